using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Skiff.Sdk.Events;

namespace Skiff.Sdk.Protocol;

// The messages of the code-server protocol (docs/code-server-protocol.md), for both ends: the code server in this
// SDK reads requests and writes the rest; the agent (which references this assembly for exactly these types) writes
// requests and reads the rest. One JSON object per line; "type" names the message and comes first. A field that is
// not nullable must be present (RespectNullableAnnotations, RespectRequiredConstructorParameters); one that may be
// left out has a default.

/// <summary>What the agent asks of a code server. <see cref="Id"/> is the agent's number for the request; the reply repeats it.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(HealthRequest), "health")]
[JsonDerivedType(typeof(ListRequest), "list")]
[JsonDerivedType(typeof(StartRequest), "start")]
[JsonDerivedType(typeof(CancelRequest), "cancel")]
[JsonDerivedType(typeof(ShutdownRequest), "shutdown")]
[JsonDerivedType(typeof(RunTaskRequest), "run_task")]
[JsonDerivedType(typeof(CancelTaskRequest), "cancel_task")]
[JsonDerivedType(typeof(TaskResultNotice), "task_result")]
[JsonDerivedType(typeof(TaskEventsNotice), "task_events")]
internal abstract record CodeServerRequest
{
    [JsonPropertyOrder(-1)]
    public long? Id { get; init; }
}

internal sealed record HealthRequest : CodeServerRequest;

internal sealed record ListRequest : CodeServerRequest;

/// <summary>
/// Starts run <paramref name="Run"/> (a new id) of <paramref name="Job"/>; <paramref name="Release"/> is stamped on its
/// run_started event. <paramref name="Traceparent"/> (W3C) is the agent's span the run's spans continue (docs/traces.md).
/// </summary>
internal sealed record StartRequest(string Run, string Job, JsonObject? Params = null, string? Release = null, string? Traceparent = null) : CodeServerRequest;

internal sealed record CancelRequest(string Run) : CodeServerRequest;

/// <summary>Stop taking runs, let running ones finish for up to <paramref name="GraceMs"/> (30 s when null), cancel the rest, exit.</summary>
internal sealed record ShutdownRequest(long? GraceMs = null) : CodeServerRequest;

/// <summary>
/// Runs a task of this version for a deployed call (docs/tasks.md, "Deployed runs"): <paramref name="Call"/> names the
/// call, <paramref name="TaskId"/> is its side-effect key, <paramref name="Run"/>, <paramref name="Op"/> and
/// <paramref name="Attempt"/> the calling run, op and op attempt its events are attributed to. Answered with
/// <see cref="TaskDoneReply"/> once the task ends, with its retries. With <paramref name="Worker"/> (the agent's name) the
/// task's events also go to the agent as they happen (<see cref="TaskEventsMessage"/>), stamped with the worker, the
/// release and <paramref name="Delivery"/> (the queue's delivery of the call); an agent that names none gets them with
/// the reply only. <paramref name="RedeliveryReason"/>, on a delivery after the first, says why the previous one ended; the
/// task's first <c>task_started</c> carries it to the calling run.
/// </summary>
internal sealed record RunTaskRequest(string Call, string TaskId, string Pool, string Task, string Run, string Op, int Attempt, JsonNode? Input = null, string? Pin = null, string? Release = null, string? Traceparent = null, string? Worker = null, int? Delivery = null, string? RedeliveryReason = null) : CodeServerRequest;

/// <summary>Cancels a task <see cref="RunTaskRequest"/> started (its caller stopped waiting); it ends with <c>task_canceled</c>.</summary>
internal sealed record CancelTaskRequest(string Call) : CodeServerRequest;

/// <summary>
/// No reply: the end of a call a run of this code server made (<see cref="CallTaskMessage"/>). <paramref name="Code"/> is
/// <c>refused</c> when the call was never queued (no such pool, task or pinned release), <c>dead_lettered</c> when no
/// worker finished it within the queue's delivery limit, otherwise null.
/// </summary>
internal sealed record TaskResultNotice(string Call, TaskOutcome Outcome, string? Code = null) : CodeServerRequest;

/// <summary>
/// No reply: events a call's task gave on its pool's worker so far (docs/tasks.md, "Live events"), for a call made with
/// <see cref="CallTaskMessage.Live"/>. Numbered in the task's own stream (per <see cref="RunEvent.Delivery"/>): the
/// calling run emits each once, and skips them when they come again with the result.
/// </summary>
internal sealed record TaskEventsNotice(string Call, IReadOnlyList<RunEvent> Events) : CodeServerRequest;

/// <summary>
/// How a task ended: its output (JSON; absent is <c>null</c>) when it succeeded, otherwise its last attempt's error; and
/// the events it gave while it ran (<c>task_*</c>, logs, output, progress), which the calling run emits as its own (those
/// it has not had live already: <see cref="TaskEventsNotice"/>).
/// </summary>
internal sealed record TaskOutcome(bool Succeeded, JsonNode? Output = null, ErrorInfo? Error = null, IReadOnlyList<RunEvent>? Events = null);

/// <summary>What a code server sends: its hello, replies (repeating the request's <see cref="Id"/>) and run events.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(HelloMessage), "hello")]
[JsonDerivedType(typeof(HealthReply), "health")]
[JsonDerivedType(typeof(DefinitionsReply), "definitions")]
[JsonDerivedType(typeof(StartedReply), "started")]
[JsonDerivedType(typeof(OkReply), "ok")]
[JsonDerivedType(typeof(ErrorReply), "error")]
[JsonDerivedType(typeof(RunEventMessage), "event")]
[JsonDerivedType(typeof(TaskDoneReply), "task_done")]
[JsonDerivedType(typeof(CallTaskMessage), "call_task")]
[JsonDerivedType(typeof(CancelCallMessage), "cancel_call")]
[JsonDerivedType(typeof(TaskEventsMessage), "task_events")]
internal abstract record CodeServerMessage
{
    [JsonPropertyOrder(-1)]
    public long? Id { get; init; }
}

/// <summary>The first message on a connection; the agent checks <paramref name="Protocol"/> before anything else.</summary>
internal sealed record HelloMessage(int Protocol, string Sdk, int Pid, int Jobs) : CodeServerMessage;

internal sealed record HealthReply(string Status, int Runs) : CodeServerMessage;

/// <summary>
/// What a version defines. <paramref name="Tasks"/> (docs/tasks.md) is left out when it declares none, so older readers
/// and older SDKs agree; a version that declares tasks makes its location a pool for them.
/// </summary>
internal sealed record DefinitionsReply(IReadOnlyList<JobDescription> Jobs, IReadOnlyList<TaskDescription>? Tasks = null) : CodeServerMessage;

internal sealed record StartedReply(string Run) : CodeServerMessage;

internal sealed record OkReply(string? Run = null) : CodeServerMessage;

/// <summary>A refused or unreadable request; <see cref="CodeServerMessage.Id"/> is absent when the request could not be read.</summary>
internal sealed record ErrorReply(string Code, string Message) : CodeServerMessage;

/// <summary>The end of a <see cref="RunTaskRequest"/>: the task returned (or failed on its last attempt, or was canceled).</summary>
internal sealed record TaskDoneReply(TaskOutcome Outcome) : CodeServerMessage;

/// <summary>
/// A run's op calls a task (code server → agent, no id: <paramref name="Call"/> names it, and the agent answers with a
/// <see cref="TaskResultNotice"/> of the same call). <paramref name="Call"/> is the task id and the op's attempt
/// (<c>RUN:OP:n/ATTEMPT</c>): a retried op calls again rather than getting its earlier attempt's result back.
/// <paramref name="Live"/>: this run takes the task's events as they happen (<see cref="TaskEventsNotice"/>); an agent
/// sends them only to a run that said so, since an older SDK would not read them.
/// </summary>
internal sealed record CallTaskMessage(string Call, string TaskId, string Pool, string Task, string Run, string Op, int Attempt, JsonNode? Input = null, string? Pin = null, string? Traceparent = null, bool? Live = null) : CodeServerMessage;

/// <summary>
/// Events of a task this code server runs for a deployed call (<see cref="RunTaskRequest.Worker"/> given), as they
/// happen: whatever the task gave since the last such message, in order (code server → agent, no id).
/// </summary>
internal sealed record TaskEventsMessage(string Call, IReadOnlyList<RunEvent> Events) : CodeServerMessage;

/// <summary>The op stopped waiting for a call (its run was canceled): the agent forgets it, and no result is sent.</summary>
internal sealed record CancelCallMessage(string Call) : CodeServerMessage;

/// <summary>
/// A run event as the agent reads it: kept as JSON, because the agent passes it on to the server as it came and only
/// looks at its run, seq and type. The code server writes the same frame from its typed event (<see cref="RunEventFrame"/>).
/// </summary>
internal sealed record RunEventMessage(JsonObject Event) : CodeServerMessage;

/// <summary>
/// The code server's side of an "event" frame: written straight from the typed event, so a run event costs one
/// serialization and no intermediate JSON tree. Reads back as <see cref="RunEventMessage"/>.
/// </summary>
internal sealed record RunEventFrame(RunEvent Event)
{
    [JsonPropertyOrder(-1)]
    public string Type => "event";
}

/// <summary>
/// A job as the protocol and <c>list --json</c> describe it; the server stores it as sent. <c>max_concurrent</c> is left
/// out of a job without a limit, so older readers and older SDKs agree.
/// </summary>
internal sealed record JobDescription(
    string Name,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Description,
    IReadOnlyList<string> Tags,
    IReadOnlyList<ParameterDescription> Parameters,
    IReadOnlyList<OpDescription> Ops,
    IReadOnlyList<ScheduleDescription>? Schedules = null,
    int? MaxConcurrent = null);

/// <summary>
/// A cron schedule of a job (docs/schedules.md): <paramref name="TimeZone"/> an IANA name or UTC, <paramref name="Missed"/>
/// <c>skip</c> or <c>run_once</c>. Left out of a job without schedules, so older readers and older SDKs agree.
/// </summary>
internal sealed record ScheduleDescription(string Cron, string TimeZone, JsonObject Params, string Missed);

/// <summary>A parameter; <paramref name="Type"/> is string, integer, number or boolean, and <paramref name="Default"/> null when required.</summary>
internal sealed record ParameterDescription(
    string Name,
    string Type,
    bool Required,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] JsonElement? Default,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Description);

internal sealed record OpDescription(string Name, IReadOnlyList<string> DependsOn, int MaxAttempts);

/// <summary>
/// A task a version declares: its input and output as .NET type names and as JSON schemas (null when the type has
/// none that System.Text.Json can export), and the retry policy its pool applies.
/// </summary>
internal sealed record TaskDescription(
    string Name,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Description,
    string InputType,
    string OutputType,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] JsonNode? InputSchema,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] JsonNode? OutputSchema,
    RetryDescription Retry);

/// <summary>A <see cref="RetryPolicy"/> as the protocol describes it, times in milliseconds.</summary>
internal sealed record RetryDescription(int MaxAttempts, long InitialDelayMs, double BackoffMultiplier, long MaxDelayMs);

/// <summary>
/// Source-generated serialization of the protocol's messages: no reflection, so it works in trimmed and AOT-compiled
/// user programs, and the first message costs no serializer warm-up.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(CodeServerRequest))]
[JsonSerializable(typeof(CodeServerMessage))]
[JsonSerializable(typeof(RunEventFrame))]
[JsonSerializable(typeof(IReadOnlyList<JobDescription>))]
[JsonSerializable(typeof(IReadOnlyList<TaskDescription>))]
[JsonSerializable(typeof(TaskOutcome))]
[JsonSerializable(typeof(JsonNode))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(bool))]
internal sealed partial class ProtocolJson : JsonSerializerContext
{
    /// <summary>
    /// The context with the SDK's escaping (<see cref="SdkJson.Options"/>): text that is not HTML-safe (quotes, &lt;,
    /// non-ASCII) is written as is, as in every other place run events are written. The settings repeat the
    /// attribute's, since the order in which this and the generated <c>Default</c> are initialized is not defined.
    /// </summary>
    public static ProtocolJson Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    /// <summary>A message as one frame: its JSON and the newline that ends it.</summary>
    public static byte[] Frame<T>(T message, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(message, typeInfo);
        Array.Resize(ref bytes, bytes.Length + 1);
        bytes[^1] = (byte)'\n';
        return bytes;
    }
}
