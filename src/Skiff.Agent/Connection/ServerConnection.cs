using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Skiff.Agent.CodeServers;
using Skiff.Agent.Locations;
using Skiff.Agent.Runs;
using Skiff.Core;
using Skiff.Core.Limits;
using Skiff.Core.Messaging;
using Skiff.Sdk.Tracing;

namespace Skiff.Agent.Connection;

/// <summary>
/// Keeps an agent connected to its server over one WebSocket: the server pushes assignments (activate a
/// release, start or cancel a run) the moment it has them, and the agent streams back outcomes, run events
/// and reports. No polling interval anywhere in the path. Reconnects with backoff when the connection drops;
/// on each connect the server re-sends what this agent should be running, and the agent resends the run
/// events the server missed meanwhile (<see cref="RunJournal"/>). See docs/agent-protocol.md. With several
/// servers (<see cref="ServerList"/>), a connection that fails or drops moves on to the next one.
/// </summary>
internal sealed class ServerConnection(AgentHost host, ServerList servers, string token, string agentName, TimeProvider time)
{
    public ServerConnection(AgentHost host, Uri server, string token, string agentName, TimeProvider time)
        : this(host, new ServerList([server]), token, agentName, time)
    {
    }

    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RunJournal> _journals = new(StringComparer.Ordinal);
    private readonly ILogger _logger = host.LoggerFactory.CreateLogger<ServerConnection>();

    // The task calls of this agent's runs that wait for their result, with where their live events go (null: nowhere); sent
    // again on each new connection.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (AgentCallTask Call, TaskCompletionSource<AgentTaskResult> Result, Action<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>? Live)> _calls = new(StringComparer.Ordinal);
    private ClientWebSocket? _socket;

    // Tasks this agent ran whose result the server has not said it recorded (AgentTaskRecorded), by call: sent again after
    // each hello, and the answer to the call handed out again, so a task that ended while its server was away (the
    // connection dropped, the server restarted) is recorded from that run and not run a second time.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, AgentTaskDone> _finished = new(StringComparer.Ordinal);

    // Numbers the connections, so a run's events go out only on one the journal is in step with.
    private long _connection;

    // Set once the agent is asked to stop (DrainAsync): no new task or run is taken. The tasks being run and answered, and
    // a signal pulsed whenever one of them or a run's journal ends, which DrainAsync waits on.
    private volatile bool _draining;
    private int _tasksHeld;
    private TaskCompletionSource _workEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The agent-protocol version asked for at connect; another one only in tests of the server's refusal.</summary>
    internal int Protocol { get; init; } = AgentProtocol.Version;

    /// <summary>Runs until canceled, reconnecting as needed.</summary>
    /// <exception cref="AgentRefusedException">A server does not speak this agent's protocol: retrying cannot help.</exception>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        host.TaskCalls = CallTaskAsync;
        using var stopReports = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var reports = ForwardReportsAsync(stopReports.Token);
        try
        {
            await ConnectLoopAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await stopReports.CancelAsync().ConfigureAwait(false);
            await reports.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Stops taking work and waits for the work this agent holds to end (docs/agent.md, "Stopping"): tells the server it
    /// is stopping (<see cref="AgentDraining"/>), so its pools' workers take no more tasks for it and no run is started on
    /// it; refuses a task or run that was sent before the server heard; and waits until every task it runs has been
    /// answered and every run it runs has ended and been stored by the server, or <paramref name="grace"/> has passed.
    /// The connection stays up meanwhile (runs' events and task calls go on); cancel <see cref="RunAsync"/> after this.
    /// Returns whether everything ended within the grace period.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        _draining = true;
        await SendAsync(new AgentDraining(), cancellationToken).ConfigureAwait(false);
        using var deadline = new CancellationTokenSource(grace, time);
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        while (true)
        {
            // Taken before looking, so work that ends in between is not missed.
            var ended = Volatile.Read(ref _workEnded).Task;
            // A task whose result is not recorded yet still counts: leaving now would have it run again.
            var tasks = Volatile.Read(ref _tasksHeld) + _finished.Count;
            if (tasks == 0 && _journals.IsEmpty)
            {
                return true;
            }

            Log.Draining(_logger, tasks, _journals.Count);
            try
            {
                await ended.WaitAsync(waiting.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                Log.DrainGraceOver(_logger, grace, Volatile.Read(ref _tasksHeld), _journals.Count);
                return false;
            }
        }
    }

    /// <summary>A task this agent held was answered, or a run's end was stored: a drain looks again.</summary>
    private void WorkEnded() => Interlocked.Exchange(ref _workEnded, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task ConnectLoopAsync(CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        // The first failure after a connection (or at start) is a warning; the retries after it, every few seconds
        // while a server is down, are Debug, so a long outage is one line and not thousands.
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var server = servers.Current;
            var wasConnected = false;
            try
            {
                using var socket = new ClientWebSocket();
                socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
                socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
                // So a refused handshake's status and reason can be read: ConnectAsync only says it was not 101.
                socket.Options.CollectHttpResponseDetails = true;
                var scheme = server.Scheme == "https" ? "wss" : "ws";
                var query = $"name={Uri.EscapeDataString(agentName)}&{AgentProtocol.QueryParameter}={Protocol}";
                var uri = new UriBuilder(server) { Scheme = scheme, Path = server.AbsolutePath.TrimEnd('/') + "/api/v1/agents/connect", Query = query }.Uri;
                try
                {
                    await socket.ConnectAsync(uri, cancellationToken).ConfigureAwait(false);
                }
                catch (WebSocketException) when ((int)socket.HttpStatusCode == AgentProtocol.RefusedStatus)
                {
                    var reason = socket.HttpResponseHeaders?.TryGetValue(AgentProtocol.RefusalHeader, out var values) == true ? string.Join(' ', values) : null;
                    throw new AgentRefusedException(
                        $"the server at {server} refused this agent (skiff {AgentProtocol.SkiffVersion}, agent protocol {Protocol}): {reason ?? "it does not speak this agent's protocol; run an agent and a server of the same skiff release"}");
                }

                long connection;
                await _sendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    connection = ++_connection;
                    _socket = socket;
                }
                finally
                {
                    _sendGate.Release();
                }

                backoff = TimeSpan.FromMilliseconds(200);
                failures = 0;
                wasConnected = true;
                Log.Connected(_logger, agentName, server);

                // First word on every connection: who this agent is and what it runs, so the server can place
                // locations by label and tell it to stop any it no longer hosts.
                await TrySendAsync(Hello(), connection, cancellationToken).ConfigureAwait(false);
                if (_draining)
                {
                    // Stopping still: this session, like the last, must get no new work.
                    await TrySendAsync(new AgentDraining(), connection, cancellationToken).ConfigureAwait(false);
                }

                foreach (var done in _finished.Values)
                {
                    // Before the calls: a call of this agent's own that waits for one of these finds its result at once.
                    await TrySendAsync(done, connection, cancellationToken).ConfigureAwait(false);
                }

                foreach (var (call, _, _) in _calls.Values)
                {
                    // Calls made while no server was connected, or whose answer the last connection did not bring: a
                    // call already queued is not queued twice, and one with a result is answered at once.
                    await TrySendAsync(call, connection, cancellationToken).ConfigureAwait(false);
                }

                using var connected = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var load = ReportLoadAsync(connection, connected.Token);
                try
                {
                    await ReceiveLoopAsync(socket, connection, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    await connected.CancelAsync().ConfigureAwait(false);
                    await load.ConfigureAwait(false);
                }

                if (!cancellationToken.IsCancellationRequested)
                {
                    // The server closed the connection (it is stopping, or replaced this one).
                    Log.ConnectionLost(_logger, agentName, server);
                }
            }
            catch (Exception exception) when (exception is WebSocketException or HttpRequestException or IOException)
            {
                // The server is down or restarting; try again shortly.
                if (wasConnected)
                {
                    Log.ConnectionLost(_logger, agentName, server);
                }
                else
                {
                    Log.ConnectFailed(_logger, ++failures == 1 ? LogLevel.Warning : LogLevel.Debug, agentName, server, exception.Message, backoff);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception exception) when (exception is not AgentRefusedException)
            {
                // A bug in one connection must not stop the agent: its locations keep serving, and the next
                // connection starts over. (A refusal is final: it goes to the caller.)
                Log.ConnectionFailed(_logger, exception, agentName, server, backoff);
            }
            finally
            {
                _socket = null;
            }

            // The server is down or dropped us: the next one may be up (with one server, it is the same one).
            servers.MoveOn(server);

            try
            {
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5000));
        }
    }

    private async Task ReceiveLoopAsync(ClientWebSocket socket, long connection, CancellationToken cancellationToken)
    {
        await foreach (var message in JsonMessages.ReadAsync(socket, cancellationToken).ConfigureAwait(false))
        {
            if (message is AgentTaskEvents taskEvents)
            {
                // Handed on here, in the order they came (the run's relay queues them without waiting).
                RelayToRun(taskEvents);
                continue;
            }

            // Each assignment runs on its own: a slow activation must not hold up a cancel.
            _ = Task.Run(() => HandleAsync(message, connection, cancellationToken), CancellationToken.None);
        }
    }

    private async Task HandleAsync(AgentMessage message, long connection, CancellationToken cancellationToken)
    {
        var request = message.Request;
        try
        {
            switch (message)
            {
                case ActivateRequest activate:
                    await ActivateAsync(activate, cancellationToken).ConfigureAwait(false);
                    break;
                case StartRunRequest start:
                    if (_draining)
                    {
                        // Sent before the server heard this agent is stopping.
                        throw new CodeServerException($"agent '{agentName}' is stopping: it finishes the runs it has and starts no new one; start the run again.", "unavailable");
                    }

                    await StartRunAsync(start, connection, cancellationToken).ConfigureAwait(false);
                    break;
                case ResumeRunsRequest resume:
                    await ResumeRunsAsync(resume, connection, cancellationToken).ConfigureAwait(false);
                    break;
                case DeactivateRequest deactivate:
                    // The location moved to other agents (a drain, or failover while this one was away).
                    await host.DeactivateAsync(deactivate.Location).ConfigureAwait(false);
                    await SendAsync(new AgentOkReply { Request = request }, cancellationToken).ConfigureAwait(false);
                    break;
                case RunStoredNotice stored:
                    _journals.TryRemove(stored.Run, out _);
                    WorkEnded();
                    break;
                case AgentTaskResult result:
                    if (_calls.TryGetValue(result.Call, out var waiting))
                    {
                        waiting.Result.TrySetResult(result);
                    }

                    break;
                case AgentTaskRecorded recorded:
                    if (_finished.TryRemove(recorded.Call, out _))
                    {
                        WorkEnded();
                    }

                    break;
                case AgentCancelTask cancelTask:
                    host.CancelTask(cancelTask.Call);
                    break;
                case AgentRunTask runTask:
                    // Counted before looking at _draining (DrainAsync sets it before counting): a task is either refused
                    // here or waited for there.
                    Interlocked.Increment(ref _tasksHeld);
                    try
                    {
                        if (_draining)
                        {
                            // Sent before the server heard this agent is stopping: the delivery fails and goes to another worker.
                            throw new CodeServerException($"agent '{agentName}' is stopping: it finishes the tasks it holds and takes no new one.", "unavailable");
                        }

                        await RunTaskAsync(runTask, connection, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _tasksHeld);
                        WorkEnded();
                    }

                    break;
                case CancelRunRequest cancel:
                    await host.CancelRunAsync(cancel.Run, cancellationToken).ConfigureAwait(false);
                    await SendAsync(new AgentOkReply { Request = request }, cancellationToken).ConfigureAwait(false);
                    break;
                case UnreadableMessage { Code: "unknown_type" } unknown:
                    await SendAsync(new AgentErrorReply("unknown_type", $"this agent does not understand '{unknown.Type}'") { Request = request }, cancellationToken).ConfigureAwait(false);
                    break;
                case UnreadableMessage unreadable:
                    // A field missing or of the wrong type: said as such, rather than as whatever it would break.
                    await SendAsync(new AgentErrorReply(unreadable.Code, unreadable.Problem) { Request = request }, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    // A message of the protocol that only an agent sends.
                    await SendAsync(new AgentErrorReply("unknown_type", $"this agent does not understand '{JsonMessages.TypeOf(message)}'") { Request = request }, cancellationToken).ConfigureAwait(false);
                    break;
            }
        }
        // Errors answer on the connection the request came on: request ids start again on each connection.
        catch (CodeServerException exception)
        {
            Log.RequestRefused(_logger, JsonMessages.TypeOf(message), exception.Message);
            await TrySendAsync(new AgentErrorReply(exception.Code ?? "failed", exception.Message) { Request = request }, connection, cancellationToken).ConfigureAwait(false);
        }
        catch (SkiffException exception)
        {
            Log.RequestRefused(_logger, JsonMessages.TypeOf(message), exception.Message);
            await TrySendAsync(new AgentErrorReply("failed", exception.Message) { Request = request }, connection, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            Log.RequestFailed(_logger, exception, JsonMessages.TypeOf(message));
            // Anything else (a blob fetch that failed, a full disk, a release that is not a digest) still gets an
            // answer, so the server reports it instead of waiting out its timeout.
            await TrySendAsync(new AgentErrorReply("failed", $"{exception.GetType().Name}: {exception.Message}") { Request = request }, connection, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A call's task events, as they happen on its pool, to the run that made the call; nobody waiting, they are let go.</summary>
    private void RelayToRun(AgentTaskEvents taskEvents)
    {
        if (!_calls.TryGetValue(taskEvents.Call, out var waiting) || waiting.Live is not { } relay)
        {
            return;
        }

        try
        {
            relay(System.Text.Json.JsonSerializer.Deserialize(taskEvents.Events, Skiff.Sdk.Protocol.ProtocolJson.Wire.IReadOnlyListRunEvent) ?? []);
        }
        catch (Exception exception) when (exception is System.Text.Json.JsonException or NotSupportedException)
        {
            // Unreadable: these are left out; the task's result brings its events again.
            Log.RequestRefused(_logger, "task_events", exception.Message);
        }
    }

    private async Task ActivateAsync(ActivateRequest activate, CancellationToken cancellationToken)
    {
        // The server's span of the deployment is the parent (from the request's traceparent); the stages are children.
        using var span = AgentTraces.Source.StartActivity("activation", ActivityKind.Server, Traces.Parent(activate.Traceparent));
        span?.SetTag(Traces.Location, activate.Location);
        span?.SetTag(Traces.Release, activate.Release);
        var result = await host.ActivateAsync(activate.Location, Digest.Parse(activate.Release), Settings(activate.MemoryLimit, activate.Environment), cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            span.Failed(result.Error);
        }

        var timings = new ActivationTimingsMs(
            (long)result.Timings.Fetch.TotalMilliseconds,
            (long)result.Timings.Materialize.TotalMilliseconds,
            (long)result.Timings.ProcessStart.TotalMilliseconds,
            (long)result.Timings.Ready.TotalMilliseconds,
            (long)result.Timings.Total.TotalMilliseconds);
        await SendAsync(
            new ActivatedReply(result.Location, result.Release.ToString(), result.Succeeded, timings, result.BlobsFetched, result.Error, result.Definitions, result.Tasks) { Request = activate.Request },
            cancellationToken).ConfigureAwait(false);
    }

    private async Task StartRunAsync(StartRunRequest start, long connection, CancellationToken cancellationToken)
    {
        var runId = start.Run;
        var location = start.Location;
        if (host.Describe(location)?.Release.ToString() != start.Release)
        {
            // This agent has just (re)connected and not caught up yet: bring the location's release up first.
            var activation = await host.ActivateAsync(location, Digest.Parse(start.Release), Settings(start.MemoryLimit, start.Environment), cancellationToken).ConfigureAwait(false);
            if (!activation.Succeeded)
            {
                throw new CodeServerException(activation.Error!, "activation_failed");
            }
        }

        RunHandle run;
        using (var span = AgentTraces.Source.StartActivity("run.start", ActivityKind.Server, Traces.Parent(start.Traceparent)))
        {
            span?.SetTag(Traces.Run, runId);
            span?.SetTag(Traces.Location, location);
            span?.SetTag(Traces.Job, start.Job);
            // Not tracing here, the run still joins the server's trace.
            run = await host.StartRunAsync(location, start.Job, start.Params, runId, Traces.Traceparent(span) ?? start.Traceparent, Hosting(start.Runs), cancellationToken).ConfigureAwait(false);
        }

        var journal = _journals.GetOrAdd(runId, id => new RunJournal(id, connection));
        await SendAsync(new RunStartedReply(runId, host.Describe(location)?.Release.ToString()) { Request = start.Request }, cancellationToken).ConfigureAwait(false);
        Log.RunStarted(_logger, runId, location, start.Job);
        // Whatever the code server sent while the last events went out goes into the next message together.
        var waiting = new List<RunEventJson>();
        while (await run.Events.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (waiting.Count < AgentRunEvents.MaxEvents && run.Events.TryRead(out var runEvent))
            {
                waiting.Add(runEvent);
            }

            await journal.AppendAsync(waiting, Volatile.Read(ref _connection), (events, on) => SendRunEventsAsync(runId, events, on, cancellationToken)).ConfigureAwait(false);
            waiting.Clear();
        }
    }

    /// <summary>
    /// A call of one of this agent's runs: sent to the server (now, or when a connection is up), and answered with its
    /// result when the server has one. Canceled, the agent stops waiting; the task may still run (the result is dropped).
    /// </summary>
    private async Task<Skiff.Sdk.Protocol.TaskResultNotice> CallTaskAsync(Skiff.Sdk.Protocol.CallTaskMessage call, Action<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>? liveEvents, CancellationToken cancellationToken)
    {
        var message = new AgentCallTask(call.Call, call.TaskId, call.Pool, call.Task, call.Run, call.Op, call.Attempt, call.Input, call.Pin, call.Traceparent);
        var result = new TaskCompletionSource<AgentTaskResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _calls[call.Call] = (message, result, liveEvents);
        try
        {
            await SendAsync(message, cancellationToken).ConfigureAwait(false);
            var answer = await result.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return new Skiff.Sdk.Protocol.TaskResultNotice(
                call.Call,
                System.Text.Json.JsonSerializer.Deserialize(answer.Outcome, Skiff.Sdk.Protocol.ProtocolJson.Wire.TaskOutcome)
                    ?? throw new System.Text.Json.JsonException("a task's outcome was null"),
                answer.Code);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The run stopped waiting (it was canceled): the server cancels the task, or skips it if no worker took it yet.
            await SendAsync(new AgentCancelCall(call.Call), CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        catch (Exception exception) when (exception is System.Text.Json.JsonException or NotSupportedException)
        {
            return CodeServerProcess.Refused(call, $"the server's answer to task call {call.Call} could not be read: {exception.Message}");
        }
        finally
        {
            _calls.TryRemove(call.Call, out _);
        }
    }

    /// <summary>Runs a task a worker of a pool this agent hosts took from the queue, and answers with how it ended.</summary>
    /// <remarks>
    /// The answer goes only on the connection the request came on: request ids start again on each connection, so
    /// on a later one it would answer some other request. A task that outlives its connection keeps its answer until the
    /// server says it recorded it: sent again, unprompted, after the next hello, and given at once (not run again) when the
    /// server hands the call out again meanwhile.
    /// The task's events go to the server as they happen (<see cref="AgentTaskEvents"/>, docs/tasks.md, "Live events"),
    /// on the same connection and before the answer: whatever the code server sent while the last batch went out goes in
    /// the next one. A server that cannot take them as fast leaves the task unhindered: beyond a few batches waiting,
    /// they are left out here, and still come back with the result.
    /// </remarks>
    private async Task RunTaskAsync(AgentRunTask run, long connection, CancellationToken cancellationToken)
    {
        if (_finished.TryGetValue(run.Call, out var kept))
        {
            // Ran already, its result not recorded when the delivery came back: that run's outcome, not a second run.
            await TrySendAsync(kept with { Request = run.Request }, connection, cancellationToken).ConfigureAwait(false);
            return;
        }

        var live = System.Threading.Channels.Channel.CreateBounded<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>(new System.Threading.Channels.BoundedChannelOptions(64)
        {
            SingleReader = true,
            FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite,
        });
        var relaying = RelayTaskEventsAsync(run.Call, live.Reader, connection, cancellationToken);
        Skiff.Sdk.Protocol.TaskOutcome outcome;
        try
        {
            outcome = await host.RunTaskAsync(
                new Skiff.Sdk.Protocol.RunTaskRequest(run.Call, run.TaskId, run.Pool, run.Task, run.Run, run.Op, run.Attempt, run.Input, run.Pin, Traceparent: run.Traceparent, Worker: agentName, Delivery: run.Delivery, RedeliveryReason: run.RedeliveryReason),
                events => live.Writer.TryWrite(events),
                cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            live.Writer.TryComplete();
            await relaying.ConfigureAwait(false);
        }

        var json = (JsonObject)System.Text.Json.JsonSerializer.SerializeToNode(outcome, Skiff.Sdk.Protocol.ProtocolJson.Wire.TaskOutcome)!;
        var done = new AgentTaskDone(json, run.Call, run.Pool, run.Delivery);
        _finished[run.Call] = done;
        if (!await TrySendAsync(done with { Request = run.Request }, connection, cancellationToken).ConfigureAwait(false))
        {
            Log.TaskAnswerKept(_logger, run.Call);
        }
    }

    /// <summary>Sends a task's events to the server as they come, in batches of up to <see cref="AgentRunEvents.MaxEvents"/>, until the task ends.</summary>
    private async Task RelayTaskEventsAsync(string call, System.Threading.Channels.ChannelReader<IReadOnlyList<Skiff.Sdk.Events.RunEvent>> live, long connection, CancellationToken cancellationToken)
    {
        var batch = new List<Skiff.Sdk.Events.RunEvent>();
        try
        {
            while (await live.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (batch.Count < AgentRunEvents.MaxEvents && live.TryRead(out var events))
                {
                    batch.AddRange(events);
                }

                var json = (JsonArray)System.Text.Json.JsonSerializer.SerializeToNode<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>(batch, Skiff.Sdk.Protocol.ProtocolJson.Wire.IReadOnlyListRunEvent)!;
                batch.Clear();
                // On the task's connection only: the server that handed the task out is the one that knows its caller.
                await TrySendAsync(new AgentTaskEvents(call, json), connection, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The agent stops.
        }
    }

    /// <summary>
    /// The server's first word on a new connection: the last event it stored of each run it believes this
    /// agent runs. The rest of each is sent again, and the answer names the runs this agent does not have (it
    /// restarted since), which the server then fails. A run the server no longer lists, it has given up on.
    /// </summary>
    private async Task ResumeRunsAsync(ResumeRunsRequest resume, long connection, CancellationToken cancellationToken)
    {
        var listed = resume.Runs;
        var unknown = new List<string>();
        foreach (var (runId, storedThrough) in listed)
        {
            if (_journals.TryGetValue(runId, out var journal))
            {
                await journal.ResumeAsync(storedThrough, connection, (events, on) => SendRunEventsAsync(runId, events, on, cancellationToken)).ConfigureAwait(false);
            }
            else
            {
                unknown.Add(runId);
            }
        }

        foreach (var journal in _journals.Values.Where(j => j.Connection != connection && !listed.ContainsKey(j.RunId)))
        {
            // Ended and stored before the connection dropped, or failed by the server when this agent stayed
            // away too long: either way no one is listening any more.
            _journals.TryRemove(journal.RunId, out _);
            WorkEnded();
            if (!journal.Ended)
            {
                try
                {
                    await host.CancelRunAsync(journal.RunId, cancellationToken).ConfigureAwait(false);
                }
                catch (CodeServerException)
                {
                    // It ended meanwhile.
                }
            }
        }

        await SendAsync(new ResumedReply(unknown) { Request = resume.Request }, cancellationToken).ConfigureAwait(false);
    }

    private AgentHello Hello() => new(
        host.Labels,
        HostFacts.Capacity(host),
        [.. host.Locations.Select(l => new HeldLocation(l.Name, l.Release.ToString(), l.Draining is { Count: > 0 } draining ? [.. draining.Select(d => d.ToString())] : null))],
        HostFacts.Load(host));

    /// <summary>Reports load on one connection until it ends: what the server spreads locations and runs by.</summary>
    private async Task ReportLoadAsync(long connection, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(host.LoadInterval, time, cancellationToken).ConfigureAwait(false);
                if (!await TrySendAsync(HostFacts.Load(host), connection, cancellationToken).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task<bool> SendRunEventsAsync(string runId, IReadOnlyList<RunEventJson> runEvents, long connection, CancellationToken cancellationToken)
    {
        if (Protocol >= 3)
        {
            return await TrySendAsync(new AgentRunEvents(runId, runEvents), connection, cancellationToken).ConfigureAwait(false);
        }

        // A server that speaks only version 2 reads one event a message (tests connect so to check it still can).
        foreach (var runEvent in runEvents)
        {
            if (!await TrySendAsync(new AgentRunEvent(runId, runEvent.ToJsonObject()), connection, cancellationToken).ConfigureAwait(false))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The server is the authority on a location's settings: a limit or environment it leaves out is none.</summary>
    private static LocationSettings Settings(string? memoryLimit, IReadOnlyDictionary<string, string>? environment) =>
        LocationSettings.Default with
        {
            MemoryLimit = memoryLimit is { Length: > 0 } limit ? MemoryLimit.Parse(limit) : null,
            Environment = environment ?? new Dictionary<string, string>(),
        };

    /// <summary>
    /// Where a run the server starts executes: it sends the location's setting with every run, so a change needs no
    /// activation. The server checked the name when it was set; anything but <c>shared</c>, a server that sends none
    /// included, is isolated.
    /// </summary>
    private static RunHosting Hosting(string? runs) => runs == "shared" ? RunHosting.Shared : RunHosting.Isolated;

    private async Task ForwardReportsAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var report in host.Reports.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                await SendAsync(new LocationReport(report.Location, report.Release.ToString(), report.Kind.ToString(), report.Message, report.At), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Sends on whatever connection is up; a message that finds none is dropped (the server asks again).</summary>
    private Task SendAsync(AgentMessage message, CancellationToken cancellationToken) => TrySendAsync(message, connection: null, cancellationToken);

    /// <summary>Sends on the given connection (any, when null), returning whether the message went out on it.</summary>
    private async Task<bool> TrySendAsync(AgentMessage message, long? connection, CancellationToken cancellationToken)
    {
        await _sendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_socket is { State: WebSocketState.Open } socket && (connection is null || connection == _connection))
            {
                await JsonMessages.SendAsync(socket, message, cancellationToken).ConfigureAwait(false);
                return true;
            }

            return false;
        }
        catch (Exception exception) when (exception is WebSocketException or IOException or ObjectDisposedException)
        {
            // The connection dropped; the receive loop reconnects and the server asks for what it missed.
            return false;
        }
        finally
        {
            _sendGate.Release();
        }
    }
}
