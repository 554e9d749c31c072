using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Skiff.Core.Messaging;

// The messages of the agent protocol (docs/agent-protocol.md), for both ends: the server writes requests and reads
// the rest; the agent reads requests and writes the rest. One JSON object per WebSocket text message (JsonMessages);
// "type" names the message. A field that is not nullable must be present (RespectNullableAnnotations,
// RespectRequiredConstructorParameters); one that may be left out has a default, and a null one is left out.

/// <summary>
/// Any message of the agent protocol. <see cref="Request"/> is the server's number for a request (one it sends with a
/// request id); the reply repeats it. Notices and the agent's unprompted messages have none.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(ActivateRequest), "activate")]
[JsonDerivedType(typeof(StartRunRequest), "start_run")]
[JsonDerivedType(typeof(CancelRunRequest), "cancel_run")]
[JsonDerivedType(typeof(ResumeRunsRequest), "resume_runs")]
[JsonDerivedType(typeof(DeactivateRequest), "deactivate")]
[JsonDerivedType(typeof(RunStoredNotice), "run_stored")]
[JsonDerivedType(typeof(ActivatedReply), "activated")]
[JsonDerivedType(typeof(RunStartedReply), "run_started")]
[JsonDerivedType(typeof(ResumedReply), "resumed")]
[JsonDerivedType(typeof(AgentOkReply), "ok")]
[JsonDerivedType(typeof(AgentErrorReply), "error")]
[JsonDerivedType(typeof(AgentHello), "hello")]
[JsonDerivedType(typeof(AgentLoad), "load")]
[JsonDerivedType(typeof(LocationReport), "report")]
[JsonDerivedType(typeof(AgentRunEvent), "run_event")]
[JsonDerivedType(typeof(AgentRunEvents), "run_events")]
[JsonDerivedType(typeof(AgentRunTask), "run_task")]
[JsonDerivedType(typeof(AgentTaskDone), "task_done")]
[JsonDerivedType(typeof(AgentCallTask), "call_task")]
[JsonDerivedType(typeof(AgentTaskResult), "task_result")]
[JsonDerivedType(typeof(AgentCancelCall), "cancel_call")]
[JsonDerivedType(typeof(AgentCancelTask), "cancel_task")]
[JsonDerivedType(typeof(AgentDraining), "draining")]
[JsonDerivedType(typeof(AgentTaskEvents), "task_events")]
[JsonDerivedType(typeof(AgentTaskRecorded), "task_recorded")]
internal abstract record AgentMessage
{
    [JsonPropertyOrder(-1)]
    public long? Request { get; init; }
}

// Server → agent requests.

/// <summary>
/// Makes <paramref name="Release"/> live on <paramref name="Location"/>. <paramref name="MemoryLimit"/> is the
/// location's limit in canonical form (<c>512MiB</c>); null, it has none: the agent applies exactly what it is sent.
/// <paramref name="Traceparent"/> (W3C) is the server's span the activation's spans continue (docs/traces.md).
/// </summary>
internal sealed record ActivateRequest(string Location, string Release, string? MemoryLimit = null, string? Traceparent = null) : AgentMessage
{
    /// <summary>
    /// The location's environment (docs/env.md), secrets in plain text: every process of the location gets it. Absent or
    /// null, none. The agent keeps it in memory only, and writes it to no log or file.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    // A record prints its members, values included: this one's may be secrets.
    public override string ToString() => $"ActivateRequest {{ Location = {Location}, Release = {Release}, MemoryLimit = {MemoryLimit}, Environment = {Environment?.Count ?? 0} variable(s) }}";
}

/// <summary>
/// Starts run <paramref name="Run"/> (a new id) of <paramref name="Release"/>: an agent not running that release on the
/// location yet (it has just reconnected and not caught up) activates it first. <paramref name="Traceparent"/> (W3C) is
/// the server's span the run's spans continue (docs/traces.md).
/// </summary>
internal sealed record StartRunRequest(string Run, string Location, string Job, string Release, JsonObject? Params = null, string? MemoryLimit = null, string? Traceparent = null) : AgentMessage
{
    /// <summary>The location's environment, for the activation an agent not caught up does first; see <see cref="ActivateRequest.Environment"/>.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>Where the run executes: <c>isolated</c> (a process of its own) or <c>shared</c> (its release's shared run host); absent or null, isolated.</summary>
    public string? Runs { get; init; }

    // A record prints its members, values included: this one's environment may hold secrets.
    public override string ToString() => $"StartRunRequest {{ Run = {Run}, Location = {Location}, Job = {Job}, Release = {Release}, Environment = {Environment?.Count ?? 0} variable(s) }}";
}

internal sealed record CancelRunRequest(string Run) : AgentMessage;

/// <summary>The server's first request on a connection: each run it has as running on the agent, with the last event sequence number it stored.</summary>
internal sealed record ResumeRunsRequest(IReadOnlyDictionary<string, long> Runs) : AgentMessage;

internal sealed record DeactivateRequest(string Location) : AgentMessage;

/// <summary>Server → agent, no reply: the server has stored the run's last event, so the agent may forget its events.</summary>
internal sealed record RunStoredNotice(string Run) : AgentMessage;

/// <summary>
/// Runs a task on the agent's live version of <paramref name="Pool"/> for a deployed call (docs/tasks.md): the server's
/// worker for the pool took it from the queue (its <paramref name="Delivery"/>th delivery). With <paramref name="Pin"/>,
/// only a live release whose digest starts with it may run it. Answered with <see cref="AgentTaskDone"/> when the task
/// ends (its retries included), or an error when the agent could not run it (the delivery then fails and comes again).
/// <paramref name="RedeliveryReason"/>, from the second delivery on, says why the previous one ended (the calling run's
/// <c>task_started</c> carries it); added without a new protocol version, as older agents ignore it.
/// </summary>
internal sealed record AgentRunTask(string Call, string TaskId, string Pool, string Task, string Run, string Op, int Attempt, int Delivery, JsonNode? Input = null, string? Pin = null, string? Traceparent = null, string? RedeliveryReason = null) : AgentMessage;

/// <summary>
/// Server → agent, no reply: the end of a call one of its runs made (<see cref="AgentCallTask"/>). <paramref name="Outcome"/>
/// is the code-server protocol's task outcome as the pool's code server wrote it (<c>succeeded</c>, <c>output</c>,
/// <c>error</c>, <c>events</c>); <paramref name="Code"/> is <c>refused</c> (never queued) or <c>dead_lettered</c>, or absent.
/// </summary>
internal sealed record AgentTaskResult(string Call, JsonObject Outcome, string? Code = null) : AgentMessage;

/// <summary>
/// Both ways, no reply (docs/tasks.md, "Live events"): events a task gave while it runs for call <paramref name="Call"/>,
/// in order, as the pool's code server wrote them (docs/events.md, stamped with the worker, release and delivery). The
/// agent running the task sends them to the server that handed it the task; that server sends them on to the agent whose
/// run made the call, which hands them to the run's process. Dropped wherever nobody waits for the call any more.
/// </summary>
internal sealed record AgentTaskEvents(string Call, JsonArray Events) : AgentMessage
{
    // A record prints its members: this one's would be every event.
    public override string ToString() => $"AgentTaskEvents {{ Call = {Call}, Events = {Events.Count} }}";
}

/// <summary>Server → agent, no reply: the caller of a task the agent runs stopped waiting; the task's token is canceled.</summary>
internal sealed record AgentCancelTask(string Call) : AgentMessage;

/// <summary>
/// Server → agent, no reply: the result of call <paramref name="Call"/>, which the agent ran (<see cref="AgentTaskDone"/>),
/// is recorded (this time, or before), so the agent may forget the outcome it keeps until then.
/// </summary>
internal sealed record AgentTaskRecorded(string Call) : AgentMessage;

// Agent → server replies.

/// <summary>
/// What became of an activate request. <paramref name="Definitions"/> are the code server's job definitions and
/// <paramref name="Tasks"/> its tasks (docs/code-server-protocol.md; left out when the version declares none), which
/// the server stores as sent.
/// </summary>
internal sealed record ActivatedReply(
    string Location,
    string Release,
    bool Succeeded,
    ActivationTimingsMs TimingsMs,
    long BlobsFetched,
    string? Error = null,
    JsonArray? Definitions = null,
    JsonArray? Tasks = null) : AgentMessage;

/// <summary>Where an activation's time went, in whole milliseconds.</summary>
internal sealed record ActivationTimingsMs(long Fetch, long Materialize, long ProcessStart, long Ready, long Total);

/// <summary>The run is going; its events follow as <see cref="AgentRunEvent"/>s.</summary>
internal sealed record RunStartedReply(string Run, string? Release = null) : AgentMessage;

/// <summary>The answer to <see cref="ResumeRunsRequest"/>, after the missing events: the runs the agent does not have.</summary>
internal sealed record ResumedReply(IReadOnlyList<string> Unknown) : AgentMessage;

internal sealed record AgentOkReply : AgentMessage;

/// <summary>
/// A request refused or failed. Codes: those of the code-server protocol (<c>unknown_job</c>, <c>bad_parameters</c>,
/// …), <c>unknown_location</c>, <c>activation_failed</c>, <c>unknown_type</c>, <c>malformed</c>, <c>failed</c>.
/// </summary>
internal sealed record AgentErrorReply(string Code, string Message) : AgentMessage;

/// <summary>
/// The end of an <see cref="AgentRunTask"/>: the task's outcome as the pool's code server wrote it, passed on as it came,
/// and the call it ends (<see cref="AgentRunTask.Call"/>), which the server can check against the request it answers.
/// The agent keeps it until the server says it is recorded (<see cref="AgentTaskRecorded"/>), and sends it again,
/// unprompted (no request id), with its <paramref name="Pool"/> and <paramref name="Delivery"/>, on each new connection
/// (the answer did not reach a worker: the connection dropped, or the server restarted); the server records it then, so
/// the task is not run again when its delivery comes back.
/// </summary>
internal sealed record AgentTaskDone(JsonObject Outcome, string? Call = null, string? Pool = null, int? Delivery = null) : AgentMessage;

// Agent → server, unprompted.

/// <summary>
/// A run on this agent calls a task (docs/tasks.md): the server checks the pool serves it, puts it on the pool's queue and
/// answers with an <see cref="AgentTaskResult"/> of the same <paramref name="Call"/> when it has a result. The agent sends
/// its calls still waiting again on each new connection; a call that has a result is answered at once, never queued twice.
/// </summary>
internal sealed record AgentCallTask(string Call, string TaskId, string Pool, string Task, string Run, string Op, int Attempt, JsonNode? Input = null, string? Pin = null, string? Traceparent = null) : AgentMessage;

/// <summary>
/// A run of this agent stopped waiting for a call (it was canceled): the server forgets the call, cancels its task if a
/// worker runs it, and has a worker that takes it later settle it as canceled without running it.
/// </summary>
internal sealed record AgentCancelCall(string Call) : AgentMessage;

/// <summary>
/// The agent is stopping (SIGTERM, Ctrl-C: docs/agent.md, "Stopping"): it finishes the tasks and runs it holds and takes
/// no new ones, so the server's workers of its pools stop taking tasks for it and no new run is started on it. Sent on
/// the connection that is up, and again after the hello of any later one until the agent exits. Not stored: an agent
/// that starts again under the same name takes work again.
/// </summary>
internal sealed record AgentDraining : AgentMessage;

/// <summary>
/// The agent's first message on every connection: what it is (labels, capacity) and runs. Until its hello an agent is
/// not chosen for anything new.
/// </summary>
internal sealed record AgentHello(
    IReadOnlyDictionary<string, string> Labels,
    HostCapacity Capacity,
    IReadOnlyList<HeldLocation> Locations,
    AgentLoad? Load = null) : AgentMessage;

/// <summary>The host as the agent found it when it connected; a value it could not read is left out rather than guessed.</summary>
internal sealed record HostCapacity(int Cpus, long? MemoryBytes = null, long? DiskBytes = null, HostIsolation? Isolation = null);

/// <summary>
/// How the agent isolates the locations it hosts: whether each runs in a sandbox of its own, whether cgroups bound its
/// memory (native too), CPU and processes, and the agent's own one-line account. Absent from agents older than it.
/// </summary>
internal sealed record HostIsolation(bool Sandboxed, bool Cgroups, string Description);

/// <summary>
/// A location the agent runs, and the release it runs there; <paramref name="Draining"/>, a pool's replaced releases it
/// still drains there (docs/tasks.md, "Pins"). Absent from agents older than it, which drain nothing.
/// </summary>
internal sealed record HeldLocation(string Location, string Release, IReadOnlyList<string>? Draining = null);

/// <summary>
/// The agent's load, every few seconds (and inside its hello). The server keeps it as this record writes it when it is
/// not a message of its own (declared as <see cref="AgentLoad"/>, it is written without "type"), and places by it.
/// </summary>
internal sealed record AgentLoad(
    int Locations,
    int Runs,
    int CachedFolders,
    IReadOnlyList<string> Environments,
    long? MemoryUsedBytes = null,
    double? CpuLoad = null,
    long? DiskFreeBytes = null) : AgentMessage;

/// <summary>
/// Something that happened to a location on the agent. <paramref name="Kind"/> is the agent's report kind as its name
/// (<c>Activated</c>, <c>ActivationFailed</c>, <c>Crashed</c>, <c>Restarted</c>, <c>Unhealthy</c>, <c>OutOfMemory</c>,
/// <c>Stopped</c>): a string, so a kind a newer agent adds reaches the server as what it is rather than failing the read.
/// </summary>
internal sealed record LocationReport(string Location, string Release, string Kind, string Message, DateTimeOffset At) : AgentMessage;

/// <summary>
/// One event of a run (docs/events.md), kept as JSON: the code server in the user's program writes it with whatever
/// SDK it was built with, possibly newer than this agent or server, and both only pass it on and store it as it came,
/// looking at no more than its seq and type (<see cref="RunEvents"/>). A typed copy would drop fields it did not know.
/// </summary>
internal sealed record AgentRunEvent(string Run, JsonObject Event) : AgentMessage;

/// <summary>
/// Events of one run, consecutive and in order: whatever the agent had waiting to send, up to
/// <see cref="MaxEvents"/> (agent protocol 3). One message and one parse for many events instead of one each; the
/// events themselves are as in <see cref="AgentRunEvent"/>, passed on and stored as they came (<see cref="RunEventJson"/>).
/// </summary>
internal sealed record AgentRunEvents(string Run, IReadOnlyList<RunEventJson> Events) : AgentMessage
{
    /// <summary>
    /// Events per message at most, and about <see cref="MaxBytes"/> of their JSON (one larger event goes alone): the
    /// server holds a message whole while it reads it, and stores up to 2,000 events per transaction.
    /// </summary>
    public const int MaxEvents = 1000;

    /// <inheritdoc cref="MaxEvents"/>
    public const int MaxBytes = 1024 * 1024;

    // A record prints its members: this one's would be a list's type name, not what it holds.
    public override string ToString() => $"AgentRunEvents {{ Run = {Run}, Events = {Events.Count} (seq {Events.FirstOrDefault()?.Seq}–{Events.LastOrDefault()?.Seq}) }}";
}

/// <summary>
/// Source-generated serialization of the agent protocol's messages: no reflection and no serializer warm-up on the
/// first message. Field names are snake_case, as on the wire. "type" may come anywhere in a message: the protocol
/// never required it first (earlier releases happened to write it first, and "request" last).
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true,
    AllowOutOfOrderMetadataProperties = true)]
[JsonSerializable(typeof(AgentMessage))]
[JsonSerializable(typeof(AgentLoad))]
[JsonSerializable(typeof(HostCapacity))]
internal sealed partial class AgentJson : JsonSerializerContext
{
    /// <summary>
    /// The context both ends use. Text is written as is rather than with HTML-safe escapes (<c>'</c> as <c>\u0027</c>,
    /// non-ASCII as <c>\uXXXX</c>), as the code-server protocol writes it: these messages never land in a page, and a
    /// run's log lines stay readable and short. The settings repeat the attribute's, since the order in which this and
    /// the generated <c>Default</c> are initialized is not defined.
    /// </summary>
    public static AgentJson Wire { get; } = new(new System.Text.Json.JsonSerializerOptions
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        AllowOutOfOrderMetadataProperties = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

/// <summary>
/// A JSON object that arrived as a message but is not one this release reads (<see cref="JsonMessages.ReadAsync"/>):
/// an unknown <paramref name="Type"/> (<paramref name="Code"/> <c>unknown_type</c>) or a known one with a field missing
/// or of the wrong type (<c>malformed</c>). Never sent; a request gets an <see cref="AgentErrorReply"/> saying this.
/// </summary>
internal sealed record UnreadableMessage(string? Type, string Code, string Problem) : AgentMessage;
