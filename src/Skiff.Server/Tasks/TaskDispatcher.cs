using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Skiff.Core;
using Skiff.Core.Messaging;
using Skiff.Core.Queues;
using Skiff.Server.Agents;
using Skiff.Server.Api;
using Skiff.Server.Coordination;
using Skiff.Server.Metadata;

namespace Skiff.Server.Tasks;

/// <summary>
/// Carries deployed task calls (docs/tasks.md, "Deployed runs") between the agents connected to this server and the
/// pools' queues. A call an agent sends (<see cref="AgentCallTask"/>) is checked against the pool's live release, put on
/// the pool's queue, and answered with its result once one is recorded. For every agent connected here that hosts a
/// pool, a worker consumes the pool's queue (prefetch 1) and has the agent run each task it takes
/// (<see cref="AgentRunTask"/>): the agent's answer completes the delivery, and an agent that cannot run it or goes away
/// fails it, so it is delivered again.
/// </summary>
/// <remarks>
/// The server consumes on the agents' behalf, over the connection each agent already keeps, rather than each agent
/// consuming the queue itself, whichever queue it is (the metadata store's, or RabbitMQ with <c>--task-queue</c>): the
/// embedded queue lives in the metadata store, which only servers open, and the broker's address and password stay with
/// the servers too, so agents need no new credentials, connections or protocol, and the queue's contract (leases or
/// unacknowledged deliveries while a task runs, the result recorded once, redelivery when the worker dies) holds
/// unchanged, since a worker here is a consumer like any other. An agent that disconnects mid-task fails its delivery at
/// once; a server that dies loses its leases, which run out, or its broker connections, whose deliveries come back at
/// once (docs/queues.md).
/// </remarks>
internal sealed class TaskDispatcher(IMetadataStore store, ITaskQueue queue, Func<string, AgentSession?> sessionOf, IServerBus bus, TimeProvider time, CancellationToken stopping)
{
    /// <summary>The bus topic of a task's live events sent to the server whose agent's run waits for the call.</summary>
    private const string EventsTopic = "task_events";

    /// <summary>How long which server holds which agent is taken as read, for the live events of calls made on other servers.</summary>
    private static readonly TimeSpan ConnectionsLookup = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How often the results of the calls waiting here are looked up, all in one query (<see cref="WatchResultsAsync"/>):
    /// results this server records wake their calls at once, but a task dead-lettered because its lease ran out is only
    /// found by looking (and, with several servers, results recorded by another).
    /// </summary>
    private static readonly TimeSpan ResultBackstop = TimeSpan.FromSeconds(1);

    /// <summary>How often the pools' workers are checked against their placements (<see cref="KeepWorkersAsync"/>).</summary>
    private static readonly TimeSpan WorkerCheck = TimeSpan.FromSeconds(2);

    // Calls waiting for a result, and the agent that made each (the one a reconnect last named).
    private readonly ConcurrentDictionary<string, string> _waiting = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _settled = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Pool, string Agent), Worker> _workers = new();

    // Calls whose caller stopped waiting, until settled; and the agent running each call a worker handed out.
    private readonly ConcurrentDictionary<string, byte> _canceled = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, AgentSession> _running = new(StringComparer.Ordinal);

    // The calls waited for here, as made, while they are; and those told why they wait (NoteWaitingAsync), told once.
    private readonly ConcurrentDictionary<string, AgentCallTask> _made = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _noted = new(StringComparer.Ordinal);

    // The agent whose run made each call a worker here runs (from its headers), and the live events of those made through
    // another server, on their way there; and events other servers sent for calls waited for here. Both bounded, and
    // written without waiting: a batch that finds one full is left out of the live stream (the calling run notes the gap
    // in the task's numbers, and the result brings the events), so neither the pool's agent nor the bus's listener waits
    // on a slow PostgreSQL or a slow calling agent. 64 batches each way, as the pool's agent keeps.
    private readonly ConcurrentDictionary<string, string> _callers = new(StringComparer.Ordinal);
    private readonly Channel<(string Call, string Agent, JsonArray Events)> _toServers = Channel.CreateBounded<(string, string, JsonArray)>(new BoundedChannelOptions(64) { SingleReader = true });
    private readonly Channel<string> _fromServers = Channel.CreateBounded<string>(new BoundedChannelOptions(64) { SingleReader = true });

    public ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>
    /// The agents gone past the grace period, with why (<see cref="AgentHub.GoneAgentsAsync"/>): a release only they drain
    /// takes no pinned call. Null: none is.
    /// </summary>
    public Func<CancellationToken, Task<IReadOnlyDictionary<string, string>>>? GoneAgents { get; init; }

    /// <summary>
    /// A run on <paramref name="agent"/> calls a task: refused at once (nothing queued) when the pool does not serve it;
    /// otherwise queued (once, however often the agent sends it), and answered when it has a result.
    /// </summary>
    public async Task CallAsync(string agent, AgentCallTask call)
    {
        if (string.IsNullOrEmpty(call.Call) || string.IsNullOrEmpty(call.Pool) || string.IsNullOrEmpty(call.Task))
        {
            await AnswerAsync(agent, Refused(call.Call ?? "", $"the call_task message names no {(string.IsNullOrEmpty(call.Call) ? "call id" : string.IsNullOrEmpty(call.Pool) ? "pool" : "task")}, so nothing was queued. The agent and server may be of different Skiff versions: run the same version on both.")).ConfigureAwait(false);
            return;
        }

        try
        {
            // Sent again after a reconnect: a call with a result is answered as it is, and one queued is not checked again
            // (the pool may have been redeployed since; refusing it would say nothing was queued while it is).
            var existing = await queue.GetResultAsync(call.Call, stopping).ConfigureAwait(false);
            // Waited for here already: queued by this server (a broker's queue is not in the store to be looked up).
            var queued = existing is null && (_waiting.ContainsKey(call.Call) || await store.HasTaskAsync(call.Call, stopping).ConfigureAwait(false));
            if (existing is null && !queued && await RefusalAsync(call, stopping).ConfigureAwait(false) is { } refusal)
            {
                Log.TaskCallRefused(Logger, call.Call, call.Pool, call.Task, refusal);
                await AnswerAsync(agent, Refused(call.Call, refusal)).ConfigureAwait(false);
                return;
            }

            if (existing is null)
            {
                if (!queued)
                {
                    await queue.PublishAsync(call.Pool, Message(call, agent), stopping).ConfigureAwait(false);
                }

                await EnsureWorkersAsync(call.Pool, stopping).ConfigureAwait(false);
            }
        }
        catch (SkiffException exception)
        {
            // The store cannot be reached: the call may or may not be queued, and is not waited for. Publishing it again is
            // safe, but nothing here would; the op fails saying so, and its retry policy may call again.
            await AnswerAsync(agent, Refused(call.Call, $"the pool's queue could not be reached ({exception.Message}); the call may have been queued, and its result is not waited for. The op may call again.")).ConfigureAwait(false);
            return;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // A fault of the server's: said to the op, so it does not wait for an answer that would never come.
            Log.TaskCallFailed(Logger, exception, call.Call);
            await AnswerAsync(agent, Refused(call.Call, $"the server failed taking the call ({exception.GetType().Name}: {exception.Message}); the call may have been queued, and its result is not waited for. The op may call again; the server's log has the details.")).ConfigureAwait(false);
            return;
        }

        var first = _waiting.TryAdd(call.Call, agent);
        _waiting[call.Call] = agent;
        _made[call.Call] = call;
        if (first)
        {
            _ = AwaitResultAsync(call.Call);
        }
    }

    /// <summary>
    /// The caller of a call stopped waiting (its run was canceled): the call is no longer answered, a task running for it
    /// is canceled on its agent, and one still queued is settled as canceled at once (it is no work for its pool's scaling
    /// any more); a broker's copy, left in its queue, is taken and discarded by the worker here that takes it (this server
    /// only: through another server it still runs).
    /// </summary>
    public async Task CancelAsync(AgentCancelCall cancel)
    {
        if (!_waiting.TryRemove(cancel.Call, out _))
        {
            // Answered already (or never made here): nothing is left to stop.
            return;
        }

        _canceled[cancel.Call] = 0;
        var made = _made.GetValueOrDefault(cancel.Call);
        if (_settled.TryRemove(cancel.Call, out var waiter))
        {
            // Its waiter stops waiting, and forgets the cancel if the call was settled already (no worker will take it).
            waiter.TrySetResult();
        }

        if (_running.TryGetValue(cancel.Call, out var session))
        {
            await session.TrySendAsync(new AgentCancelTask(cancel.Call)).ConfigureAwait(false);
        }
        else if (made is not null)
        {
            await SettleCanceledAsync(cancel.Call, made.Pool).ConfigureAwait(false);
        }
    }

    private async Task SettleCanceledAsync(string call, string pool)
    {
        try
        {
            var canceled = Canceled("the call was canceled before a worker took it");
            var result = new TaskResult(call, pool, Succeeded: true, Encoding.UTF8.GetBytes(canceled.ToJsonString()), Error: null, Deliveries: 0, time.GetUtcNow());
            if (!await store.HasTaskAsync(call, stopping).ConfigureAwait(false))
            {
                // On a broker (or settled already, when this changes nothing): its copy cannot be taken from the middle of
                // the queue, so the result is recorded with the mark that a copy is left there, which the pool's count
                // leaves out (it is no work: a pool at zero is not placed only to settle it). The worker here that takes
                // the copy settles it without running it (through another server, it runs and its outcome is discarded).
                await store.RecordCanceledOnBrokerAsync(result, stopping).ConfigureAwait(false);
                return;
            }

            // Still queued in the store: settled as canceled now, which takes it off the queue, so a pool at zero is not
            // placed only to settle it. A worker that took it meanwhile finds it canceled, or its result a duplicate.
            await store.RecordTaskResultAsync(result, stopping).ConfigureAwait(false);
            // No worker will take it from the store now.
            _canceled.TryRemove(call, out _);
        }
        catch (SkiffException)
        {
            // The store is away for a moment: the call stays queued, and the worker that takes it settles it as canceled.
        }
    }

    /// <summary>
    /// Events of a task that <paramref name="agent"/> runs for a worker here, as they happen (docs/tasks.md, "Live events"):
    /// sent on to the agent whose run waits for the call, which hands them to the run (it numbers and stores them as its
    /// own); when that agent is connected to another server, through the bus to that server (<see cref="CarryEventsAcrossServersAsync"/>).
    /// Dropped when the call is not waited for (it was canceled or answered), or when the agent does not run the call for
    /// this server.
    /// </summary>
    public async Task RelayEventsAsync(string agent, AgentTaskEvents taskEvents)
    {
        if (!_running.TryGetValue(taskEvents.Call, out var running) || !string.Equals(running.Name, agent, StringComparison.Ordinal))
        {
            // Not a task handed to this agent here: a delivery failed already (its task's events still come with its result
            // if it ends), or an agent naming a call it does not run; neither speaks for the calling run.
            return;
        }

        if (_waiting.TryGetValue(taskEvents.Call, out var caller))
        {
            if (sessionOf(caller) is { } session)
            {
                await session.TrySendAsync(taskEvents).ConfigureAwait(false);
            }
        }
        else if (_callers.TryGetValue(taskEvents.Call, out var callerAgent) && sessionOf(callerAgent) is null)
        {
            // Its caller's agent is connected to another server, which waits for the call (a caller connected here that
            // does not wait for it canceled it, or has its result). A full way leaves them out of the live stream: the
            // pool's agent never waits on PostgreSQL.
            _toServers.Writer.TryWrite((taskEvents.Call, callerAgent, taskEvents.Events));
        }
    }

    /// <summary>
    /// Until the server stops, carries live task events between servers (docs/tasks.md, "Live events"): those of tasks run
    /// here for calls waited for on another server go to it, packed into as few bus messages as fit (a NOTIFY holds less
    /// than 8000 bytes) and sent one after another, so they arrive in order; and those other servers send for calls waited
    /// for here go to the calling agents, in the order they came.
    /// </summary>
    public Task CarryEventsAcrossServersAsync()
    {
        bus.Subscribe((topic, body) =>
        {
            if (topic == EventsTopic)
            {
                // Full: the calling agent takes them slower than they come; left out of the live stream.
                _fromServers.Writer.TryWrite(body);
            }
        });
        return Task.WhenAll(SendToServersAsync(), HandToCallersAsync());
    }

    private async Task SendToServersAsync()
    {
        IReadOnlyDictionary<string, string> holding = new Dictionary<string, string>();
        var lookedUp = long.MinValue;
        try
        {
            while (await _toServers.Reader.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                // Whatever came while the last notices were sent goes now, a call's batches in a row packed together.
                var pending = new List<(string Call, string Agent, List<JsonNode?> Events)>();
                while (_toServers.Reader.TryRead(out var batch))
                {
                    if (pending is [.., var last] && last.Call == batch.Call && last.Agent == batch.Agent)
                    {
                        last.Events.AddRange(batch.Events);
                    }
                    else
                    {
                        pending.Add((batch.Call, batch.Agent, [.. batch.Events]));
                    }
                }

                foreach (var (call, agent, events) in pending)
                {
                    try
                    {
                        // Which server each agent is connected to: the one its calls are waited for on, since an agent sends
                        // its calls again to the server it reconnects to. Looked at again when old, or sooner for an agent
                        // not in it (connected since).
                        var age = lookedUp == long.MinValue ? TimeSpan.MaxValue : time.GetElapsedTime(lookedUp);
                        if (age > ConnectionsLookup || (!holding.ContainsKey(agent) && age > ConnectionsLookup / 8))
                        {
                            holding = (await store.ListAgentConnectionsAsync(stopping).ConfigureAwait(false)).ToDictionary(c => c.Agent, c => c.Server, StringComparer.Ordinal);
                            lookedUp = time.GetTimestamp();
                        }

                        if (holding.GetValueOrDefault(agent) is not { } server || server == bus.ServerId)
                        {
                            continue;
                        }

                        foreach (var body in Packed(call, events, bus.MaxBodyBytes(server, EventsTopic)))
                        {
                            // Not sent (PostgreSQL is away): left out of the live stream, as a batch that finds the way full.
                            await bus.SendAsync(server, EventsTopic, body, stopping).ConfigureAwait(false);
                        }
                    }
                    catch (Exception exception) when (exception is not OperationCanceledException)
                    {
                        // The store is away for a moment (or worse, logged): these are left out, the next ones tried.
                        Log.TaskEventsNotRelayed(Logger, call, exception.Message);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The server stops.
        }
    }

    /// <summary>
    /// A call's events as bus message bodies (<c>{"call":…,"events":[…]}</c>) of at most <paramref name="maxBytes"/> each, in
    /// order. An event too big for one alone is left out (the calling run notes the gap; the result brings it).
    /// </summary>
    private static List<string> Packed(string call, IEnumerable<JsonNode?> events, int maxBytes)
    {
        var head = $"{{\"call\":{JsonValue.Create(call).ToJsonString()},\"events\":[";
        var bodies = new List<string>();
        var body = new StringBuilder(head);
        var bytes = Encoding.UTF8.GetByteCount(head) + 2;
        var count = 0;
        foreach (var taskEvent in events)
        {
            var json = taskEvent?.ToJsonString() ?? "null";
            var size = Encoding.UTF8.GetByteCount(json) + 1;
            if (bytes + size > maxBytes && count > 0)
            {
                bodies.Add(body.Append("]}").ToString());
                body.Clear().Append(head);
                bytes = Encoding.UTF8.GetByteCount(head) + 2;
                count = 0;
            }

            if (bytes + size > maxBytes)
            {
                continue;
            }

            body.Append(count > 0 ? "," : "").Append(json);
            bytes += size;
            count++;
        }

        if (count > 0)
        {
            bodies.Add(body.Append("]}").ToString());
        }

        return bodies;
    }

    private async Task HandToCallersAsync()
    {
        try
        {
            while (await _fromServers.Reader.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                while (_fromServers.Reader.TryRead(out var body))
                {
                    JsonNode? message;
                    try
                    {
                        message = JsonNode.Parse(body);
                    }
                    catch (JsonException)
                    {
                        // Not from a server of this version: nothing to hand on.
                        continue;
                    }

                    if (message is JsonObject && (string?)message["call"] is { } call && message["events"] is JsonArray events
                        && _waiting.TryGetValue(call, out var caller) && sessionOf(caller) is { } session)
                    {
                        // Awaited: the next batch, of this call or another, goes after it.
                        await session.TrySendAsync(new AgentTaskEvents(call, events)).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The server stops.
        }
    }

    /// <summary>
    /// A task <paramref name="session"/>'s agent ran ended while its answer could not reach the worker that handed it out
    /// (the connection dropped, or this or another server restarted), and the agent sends the outcome it kept (docs/tasks.md,
    /// "Nothing lost"): recorded as the call's result unless it has one, which takes it off the embedded queue (a broker's
    /// copy is let go when a worker next takes it), so the task does not run a second time. The agent is told either way.
    /// </summary>
    /// <remarks>
    /// Taken from any agent connected here, as its answers to a worker's request are: the agent token is what is trusted.
    /// A store that cannot be reached leaves the agent keeping it, and it is sent again on the agent's next connection.
    /// </remarks>
    public async Task FinishedAsync(AgentSession session, AgentTaskDone done)
    {
        if (done is not { Call: { Length: > 0 } call, Pool: { Length: > 0 } pool })
        {
            // No call or pool to record it under: an agent of another Skiff version (a reply nobody waits for is let go too).
            return;
        }

        try
        {
            var result = new TaskResult(call, pool, Succeeded: true, Encoding.UTF8.GetBytes(done.Outcome.ToJsonString()), Error: null, done.Delivery ?? 1, time.GetUtcNow());
            if (await store.RecordTaskResultAsync(result, stopping).ConfigureAwait(false))
            {
                Log.TaskResultRecordedLate(Logger, call, pool, session.Name, done.Delivery ?? 1);
            }
        }
        catch (SkiffException exception)
        {
            Log.TaskResultNotRecorded(Logger, call, pool, session.Name, exception.Message);
            return;
        }

        Settled(call);
        await session.TrySendTaskRecordedAsync(call).ConfigureAwait(false);
    }

    /// <summary>
    /// Tells each call of <paramref name="pool"/> waited for here why it waits (<paramref name="why"/>), once a call: a
    /// <c>log</c> warning in the calling run, sent as the call's task events are (numbered 0: not one of the task's own).
    /// </summary>
    public async Task NoteWaitingAsync(string pool, string why)
    {
        // A snapshot: a call made while these are sent is told at the next look, never at this one.
        foreach (var (call, made) in _made.ToArray())
        {
            if (made.Pool != pool || !_waiting.TryGetValue(call, out var agent) || sessionOf(agent) is not { } session || !_noted.TryAdd(call, 0))
            {
                continue;
            }

            var note = new JsonObject
            {
                ["v"] = 1,
                ["seq"] = 0,
                ["ts"] = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
                ["run"] = made.Run,
                ["type"] = "log",
                ["level"] = "warn",
                ["message"] = why,
                ["pool"] = made.Pool,
                ["task"] = made.Task,
                ["task_id"] = made.TaskId,
            };
            await session.TrySendAsync(new AgentTaskEvents(call, [note])).ConfigureAwait(false);
        }
    }

    /// <summary>An agent connected here: it works the queues of the pools placed on it (tasks queued before it came included).</summary>
    public Task AgentConnectedAsync(string agent, CancellationToken cancellationToken) => EnsureAllWorkersAsync(cancellationToken);

    /// <summary>
    /// Until the server stops, checks every <see cref="WorkerCheck"/> that each pool has a worker on each agent connected
    /// here that it is placed on: a pool deployed, moved or rebalanced onto an agent already connected gets its worker
    /// without waiting for a call or a reconnect, and so does an agent whose worker of a closed session had not yet let go
    /// of its slot when it reconnected. Two reads of the store per check.
    /// </summary>
    public async Task KeepWorkersAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(WorkerCheck, time, stopping).ConfigureAwait(false);
                await EnsureAllWorkersAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception exception)
            {
                // The store is away for a moment (or worse, logged): the next check tries again.
                Log.PoolWorkersNotChecked(Logger, exception.Message, WorkerCheck);
            }
        }
    }

    /// <summary>
    /// Until the server stops, looks up every <see cref="ResultBackstop"/> which of the calls waiting here have a result
    /// that no completion here announced, in one query however many wait, and wakes those.
    /// </summary>
    public async Task WatchResultsAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            var waiting = new List<string>();
            try
            {
                await Task.Delay(ResultBackstop, time, stopping).ConfigureAwait(false);
                waiting.AddRange(_waiting.Keys);
                if (waiting.Count > 0)
                {
                    foreach (var call in await store.ListTaskResultIdsAsync(waiting, stopping).ConfigureAwait(false))
                    {
                        Settled(call);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception exception)
            {
                // The store is away for a moment (or worse, logged): the next look tries again.
                Log.TaskResultsNotChecked(Logger, waiting.Count, exception.Message, ResultBackstop);
            }
        }
    }

    /// <summary>Starts a worker for every pool on every agent connected here that it is placed on and that has none yet.</summary>
    private async Task EnsureAllWorkersAsync(CancellationToken cancellationToken)
    {
        var placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var location in await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (Json.Tasks(location.TasksJson).Count > 0)
            {
                EnsureWorkers(location.Name, placements.GetValueOrDefault(location.Name) ?? []);
            }
        }
    }

    /// <summary>Why the pool cannot serve the call, in words for the calling op; null when it can.</summary>
    private async Task<string?> RefusalAsync(AgentCallTask call, CancellationToken cancellationToken)
    {
        var (pool, task) = (call.Pool, call.Task);
        // What the caller's SDK checks (PoolReference, DeployedTaskCaller), checked again for a caller whose SDK does not: an
        // empty pin is a prefix of every release, and an input over the limit makes a run_task over the code server's frame
        // limit, which it drops with an error that names no request.
        if (call.Pin is { } given && (given.Length is < Sdk.Tasks.PoolReference.MinPrefixLength or > 64 || !given.All(char.IsAsciiHexDigitLower)))
        {
            return $"'{pool}@{given}' does not pin a release: a pin is {Sdk.Tasks.PoolReference.MinPrefixLength} to 64 lowercase hex digits of the release's digest, as `skiff history {pool}` shows it ('{pool}@1a2b3c4d'). "
                + "The calling run's Skiff SDK should have refused it: build it with the SDK of the platform's version.";
        }

        if (Encoding.UTF8.GetByteCount(call.Input?.ToJsonString() ?? "null") is var bytes && bytes > Sdk.Protocol.ProtocolInfo.MaxTaskPayloadBytes)
        {
            return $"its input is {bytes} bytes of JSON, and a deployed task's input can be at most {Sdk.Protocol.ProtocolInfo.MaxTaskPayloadBytes} bytes. Pass a reference instead (a blob or a file path the task reads).";
        }

        var location = await store.GetLocationAsync(pool, cancellationToken).ConfigureAwait(false);
        if (location?.LiveRelease is not { } live)
        {
            return $"no location '{pool}' has a live release, so nothing serves task '{task}'. Deploy the pool's project there (skiff deploy PROJECT --location {pool}), "
                + "or check the name: `skiff locations` shows the pools, with their number of tasks in the TASKS column.";
        }

        // The release the call goes to: the live one, or, pinned to another, a replaced release still draining.
        var (serving, which, tasksJson) = (live, "live", location.TasksJson);
        if (call.Pin is { } pin && !live.Hex.StartsWith(pin, StringComparison.Ordinal))
        {
            var (found, ended) = await DrainingAsync(pool, pin, cancellationToken).ConfigureAwait(false);
            if (found is not { } draining)
            {
                return $"'{pool}@{pin}' pins a release that pool '{pool}' does not run: its live release is {live.Short}, and no replaced release starting with {pin} is draining"
                    + (ended is null ? " " : $"; {ended} ")
                    + $"(a replaced release serves calls pinned to it until no task has run on it for its agent's drain period, skiff agent --drain-idle; `skiff health {pool}` shows when each stopped). Pin a prefix of {live.Short}, or call '{pool}' unpinned.";
            }

            // What it declared when it was deployed; past the kept history, its agent answers instead.
            (serving, which) = (draining, "draining");
            tasksJson = (await store.ListDeploymentsAsync(pool, IMetadataStore.RetainedDeploymentsPerLocation, cancellationToken).ConfigureAwait(false))
                .FirstOrDefault(d => d.Release == draining && d.TasksJson is not null)?.TasksJson;
            if (tasksJson is null)
            {
                return null;
            }
        }

        var tasks = Json.Tasks(tasksJson).Select(t => (string?)t?["name"]).OfType<string>().ToList();
        if (!tasks.Contains(task, StringComparer.Ordinal))
        {
            return tasks.Count == 0
                ? $"location '{pool}' is not a pool: its {which} release {serving.Short} declares no tasks. Deploy a release of it that declares '{task}' (jobs.Task(\"{task}\", ...))."
                : $"pool '{pool}' declares no task '{task}' in its {which} release {serving.Short}; it declares: {string.Join(", ", tasks)}. Call one of those, or deploy a release of '{pool}' that declares it.";
        }

        return null;
    }

    /// <summary>
    /// The replaced release of <paramref name="pool"/> starting with <paramref name="pin"/> that an agent drains (its newest
    /// report on that release, in the location's health history, says draining, not yet stopped, and the agent is not gone
    /// past the grace period); null when none does. Then <c>Ended</c> says what became of the newest such release an agent
    /// drained, for the refusal; null when the history knows none.
    /// </summary>
    private async Task<(Digest? Draining, string? Ended)> DrainingAsync(string pool, string pin, CancellationToken cancellationToken)
    {
        IReadOnlyDictionary<string, string>? gone = null;
        string? ended = null;
        // Newest first, so the first group is the (agent, release) with the newest report.
        foreach (var newestFirst in (await store.ListLocationHealthAsync(pool, IMetadataStore.KeptHealthReportsPerLocation, cancellationToken).ConfigureAwait(false))
            .GroupBy(report => (report.Agent, report.Release)))
        {
            if (!Digest.TryParse(newestFirst.Key.Release, out var release) || !release.Hex.StartsWith(pin, StringComparison.Ordinal))
            {
                continue;
            }

            var newest = newestFirst.First();
            if (newest.Kind == "Draining")
            {
                // Read once, and only for a pin that names a drain: a call to the live release costs nothing more.
                gone ??= GoneAgents is { } goneAgents ? await goneAgents(cancellationToken).ConfigureAwait(false) : new Dictionary<string, string>();
                if (!gone.TryGetValue(newest.Agent, out var why))
                {
                    return (release, null);
                }

                // Its agent is gone: nothing will run a call pinned to it, whether or not a server recorded its drain ended.
                ended ??= $"release {release.Short} was draining on agent '{newest.Agent}', which is gone: {why}";
            }
            else if (newest.Kind == "Stopped")
            {
                ended ??= $"release {release.Short} stopped on agent '{newest.Agent}' at {newest.At:HH:mm:ss} UTC: {newest.Message}";
            }
        }

        return (null, ended);
    }

    private static TaskMessage Message(AgentCallTask call, string agent)
    {
        var headers = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [TaskHeaders.CallerAgent] = agent,
            [TaskHeaders.Task] = call.Task,
            [TaskHeaders.TaskId] = call.TaskId,
            [TaskHeaders.CallerRun] = call.Run,
            [TaskHeaders.CallerOp] = call.Op,
            [TaskHeaders.CallerAttempt] = call.Attempt.ToString(CultureInfo.InvariantCulture),
        };
        if (call.Pin is { } pin)
        {
            headers[TaskHeaders.PinnedRelease] = pin;
        }

        if (call.Traceparent is { } traceparent)
        {
            headers[TaskHeaders.Traceparent] = traceparent;
        }

        return new TaskMessage(call.Call, Encoding.UTF8.GetBytes(call.Input?.ToJsonString() ?? "null"), headers);
    }

    /// <summary>Starts a worker for every agent connected here that the pool is placed on and that has none yet.</summary>
    private async Task EnsureWorkersAsync(string pool, CancellationToken cancellationToken) =>
        EnsureWorkers(pool, (await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false)).GetValueOrDefault(pool) ?? []);

    private void EnsureWorkers(string pool, IReadOnlyList<string> placed)
    {
        // An agent gets workers once it is caught up (its pools live on it), and none once it said it is stopping
        // (docs/agent.md, "Stopping").
        foreach (var agent in placed.Where(a => sessionOf(a) is { IsCaughtUp: true, IsDraining: false }))
        {
            var worker = new Worker();
            if (_workers.TryAdd((pool, agent), worker))
            {
                _ = WorkAsync(pool, agent, worker);
            }
        }
    }

    /// <summary>One agent's worker for one pool: takes a task when the last one is settled, until the agent's session closes.</summary>
    private async Task WorkAsync(string pool, string agent, Worker worker)
    {
        try
        {
            if (sessionOf(agent) is not { } session)
            {
                return;
            }

            // One token for the worker's life, canceled when the server stops or this session closes (a reconnected agent
            // is a new session, worked by a worker of its own): a half-open old socket then neither takes nor holds tasks.
            using var open = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            _ = session.Closed.Task.ContinueWith(_ => Cancel(open), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            await using var consumer = await queue.ConsumeAsync(pool, new ConsumeOptions { Prefetch = 1, Worker = agent }, open.Token).ConfigureAwait(false);
            // An agent that says it is stopping ends the wait for a next task, never the task it runs (that waits on open).
            using var taking = CancellationTokenSource.CreateLinkedTokenSource(open.Token, session.Draining, worker.Retired.Token);
            while (!taking.IsCancellationRequested)
            {
                TaskDelivery delivery;
                try
                {
                    delivery = await consumer.ReceiveAsync(taking.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // The server stops, the agent went or is stopping: the consumer gives back what it holds as it is disposed.
                    return;
                }

                lock (worker)
                {
                    if (worker.Retired.IsCancellationRequested)
                    {
                        // Scaled down as this came: not run here; the consumer gives it back as it is disposed.
                        return;
                    }

                    worker.Holding = true;
                }

                var more = await RunAsync(consumer, session, delivery, open.Token).ConfigureAwait(false);
                lock (worker)
                {
                    worker.Holding = false;
                }

                if (!more)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The server stops or the agent went before the worker started consuming.
        }
        catch (Exception exception)
        {
            Log.PoolWorkerFailed(Logger, exception, pool, agent);
        }
        finally
        {
            _workers.TryRemove(KeyValuePair.Create((pool, agent), worker));
            lock (worker)
            {
                worker.Retired.Dispose();
            }

            worker.Ended.TrySetResult();
        }

        static void Cancel(CancellationTokenSource source)
        {
            try
            {
                source.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The worker had ended.
            }
        }
    }

    /// <summary>
    /// A pool scaled down off an agent (<see cref="PoolScaler"/>): its worker there takes no further task, unless it holds
    /// one now, when nothing changes and this is false, so that a busy worker is never removed. True also when there is no
    /// worker here (none started yet, or the agent is connected to another server).
    /// </summary>
    public bool TryRetire(string pool, string agent)
    {
        if (!_workers.TryGetValue((pool, agent), out var worker))
        {
            return true;
        }

        lock (worker)
        {
            if (worker.Holding)
            {
                return false;
            }

            try
            {
                worker.Retired.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // It had ended.
            }

            return true;
        }
    }

    /// <summary>
    /// A pool moved off an agent (<c>skiff agent drain</c>, a failover): its worker there takes no further task. Completes
    /// once the task it holds, if any, is settled, so that the pool is taken off the agent after that task, not under it.
    /// </summary>
    public Task RetireAsync(string pool, string agent)
    {
        if (!_workers.TryGetValue((pool, agent), out var worker))
        {
            return Task.CompletedTask;
        }

        lock (worker)
        {
            try
            {
                worker.Retired.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // It had ended.
                return Task.CompletedTask;
            }

            return worker.Holding ? worker.Ended.Task : Task.CompletedTask;
        }
    }

    /// <summary>
    /// How many tasks this server's workers have handed <paramref name="agent"/> and wait on now (<c>tasks</c> in
    /// <c>GET /api/v1/agents</c>). An agent connected through another server is counted there, and is 0 here.
    /// </summary>
    public int TasksRunningOn(string agent) => _running.Values.Count(s => string.Equals(s.Name, agent, StringComparison.Ordinal));

    /// <summary>One pool's worker on one agent: whether it holds a task now, and its retirement (both under its lock).</summary>
    private sealed class Worker
    {
        public bool Holding { get; set; }

        public CancellationTokenSource Retired { get; } = new();

        /// <summary>Completed when the worker's loop has ended, the task it held settled.</summary>
        public TaskCompletionSource Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Has the agent run one delivery and settles it; false when this agent should take no more of the pool's tasks.</summary>
    private async Task<bool> RunAsync(ITaskConsumer consumer, AgentSession session, TaskDelivery delivery, CancellationToken open)
    {
        var task = delivery.Task;
        string Header(string name) => task.Headers.GetValueOrDefault(name) ?? "";
        var request = new AgentRunTask(
            task.Id,
            task.Headers.GetValueOrDefault(TaskHeaders.TaskId) ?? task.Id,
            delivery.Pool,
            Header(TaskHeaders.Task),
            Header(TaskHeaders.CallerRun),
            Header(TaskHeaders.CallerOp),
            int.TryParse(Header(TaskHeaders.CallerAttempt), NumberStyles.None, CultureInfo.InvariantCulture, out var attempt) ? attempt : 1,
            delivery.DeliveryCount,
            JsonNode.Parse(task.Payload),
            task.Headers.GetValueOrDefault(TaskHeaders.PinnedRelease),
            task.Headers.GetValueOrDefault(TaskHeaders.Traceparent),
            TaskQueueErrors.Redelivered(delivery.DeliveryCount, delivery.PreviousError));
        // Marked running before looking for a cancel: a cancel in between then finds it running and reaches the agent.
        _running[task.Id] = session;
        if (_canceled.TryRemove(task.Id, out _))
        {
            _running.TryRemove(task.Id, out _);
            var canceled = Canceled($"the call was canceled before a worker took it (delivery {delivery.DeliveryCount})");
            await consumer.CompleteAsync(delivery, Encoding.UTF8.GetBytes(canceled.ToJsonString()), CancellationToken.None).ConfigureAwait(false);
            Settled(task.Id);
            return true;
        }

        if (task.Headers.GetValueOrDefault(TaskHeaders.CallerAgent) is { Length: > 0 } callerAgent)
        {
            _callers[task.Id] = callerAgent;
        }

        AgentMessage reply;
        try
        {
            // No timeout: a task runs as long as it runs; the queue's lease is renewed meanwhile, and the agent going away
            // (its session closing, even with its socket half-open) ends the wait at once.
            reply = await session.RequestAsync(request, Timeout.InfiniteTimeSpan, open).ConfigureAwait(false);
        }
        catch (AgentUnavailableException exception)
        {
            reply = new AgentErrorReply("unavailable", exception.Message);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            // The session closed (the agent reconnected, or went): this one will not answer, so the delivery fails and
            // the task goes to a worker of a session that will.
            reply = new AgentErrorReply("unavailable", $"agent '{session.Name}' disconnected before it answered.");
        }
        catch (OperationCanceledException)
        {
            // The server stops: the lease runs out, and the task is delivered again.
            return false;
        }
        finally
        {
            _running.TryRemove(task.Id, out _);
            _callers.TryRemove(task.Id, out _);
        }

        try
        {
            if (reply is AgentTaskDone done)
            {
                await consumer.CompleteAsync(delivery, Encoding.UTF8.GetBytes(done.Outcome.ToJsonString()), CancellationToken.None).ConfigureAwait(false);
                // Recorded (now, or by an earlier delivery): the agent may forget the outcome it keeps until then.
                await session.TrySendTaskRecordedAsync(task.Id).ConfigureAwait(false);
                return true;
            }

            var error = reply is AgentErrorReply refused ? refused : new AgentErrorReply("failed", $"it answered {JsonMessages.TypeOf(reply)}");
            Log.TaskDeliveryFailed(Logger, task.Id, delivery.Pool, session.Name, delivery.DeliveryCount, error.Message);
            await consumer.FailAsync(delivery, $"agent '{session.Name}' did not run it: {error.Message}", CancellationToken.None).ConfigureAwait(false);
            // A pool gone from the agent, or an agent gone: its worker stops, and the task goes to another.
            return error.Code is not ("unavailable" or "unknown_location" or "unknown_type");
        }
        finally
        {
            Settled(task.Id);
        }
    }

    /// <summary>A call was settled here (or failed, to be delivered again): its waiter looks at the store now.</summary>
    private void Settled(string call)
    {
        _canceled.TryRemove(call, out _);
        if (_settled.TryRemove(call, out var settled))
        {
            settled.TrySetResult();
        }
    }

    /// <summary>Waits for a call's result and sends it to the agent that made the call (the one connected now).</summary>
    private async Task AwaitResultAsync(string call)
    {
        try
        {
            await AwaitResultCoreAsync(call).ConfigureAwait(false);
        }
        finally
        {
            _made.TryRemove(call, out _);
            _noted.TryRemove(call, out _);
        }
    }

    private async Task AwaitResultCoreAsync(string call)
    {
        while (!stopping.IsCancellationRequested)
        {
            var settled = _settled.GetOrAdd(call, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            try
            {
                // Looked at before the store, so a cancel is never missed between the two.
                var waited = _waiting.ContainsKey(call);
                if (await queue.GetResultAsync(call, stopping).ConfigureAwait(false) is { } result)
                {
                    _settled.TryRemove(call, out _);
                    _canceled.TryRemove(call, out _);
                    if (_waiting.TryRemove(call, out var agent))
                    {
                        await AnswerAsync(agent, Answer(call, result)).ConfigureAwait(false);
                    }

                    return;
                }

                if (!waited)
                {
                    // Canceled and not settled: nobody waits for it (a worker that takes it settles it as canceled).
                    _settled.TryRemove(call, out _);
                    return;
                }

                // Woken by a completion here, a cancel, or the look for all waiting calls (a result recorded elsewhere).
                await settled.WaitAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SkiffException)
            {
                // The store is away for a moment; the next look may find it back.
                try
                {
                    await Task.Delay(ResultBackstop, time, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            catch (Exception exception)
            {
                // Not answered here now; the calling agent sends the call again when it reconnects.
                _waiting.TryRemove(call, out _);
                _settled.TryRemove(call, out _);
                Log.TaskCallFailed(Logger, exception, call);
                return;
            }
        }
    }

    private static AgentTaskResult Answer(string call, TaskResult result) =>
        result.Succeeded && result.Payload is { } payload && JsonNode.Parse(payload) is JsonObject outcome
            ? new AgentTaskResult(call, outcome)
            : new AgentTaskResult(call, Failure(result.Error ?? "the task ended without a result"), "dead_lettered");

    private static AgentTaskResult Refused(string call, string why) => new(call, Failure(why), "refused");

    /// <summary>A task outcome (docs/code-server-protocol.md) of a call that ended without its task's own word.</summary>
    private static JsonObject Failure(string message, string type = "") =>
        new() { ["succeeded"] = false, ["error"] = new JsonObject { ["type"] = type, ["message"] = message } };

    /// <summary>The outcome of a call canceled before it ran: a failure the calling op reads as its cancellation.</summary>
    private static JsonObject Canceled(string message) => Failure(message, typeof(OperationCanceledException).FullName!);

    /// <summary>Sends a call's end to its agent; one not connected now asks again when it reconnects (its calls are re-sent).</summary>
    private async Task AnswerAsync(string agent, AgentTaskResult result)
    {
        if (sessionOf(agent) is { } session)
        {
            await session.TrySendAsync(result).ConfigureAwait(false);
        }
    }
}
