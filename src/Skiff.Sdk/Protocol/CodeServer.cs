using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading.Channels;
using Skiff.Sdk.Definitions;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;
using Skiff.Sdk.Tasks;
using Skiff.Sdk.Tracing;

namespace Skiff.Sdk.Protocol;

/// <summary>
/// Serves the code-server protocol on one connection to the agent that started this process: health,
/// list definitions, start runs and stream their events, cancel, shut down. The agent listens on a Unix
/// domain socket and passes its path; this process connects, so it never outlives its agent: when the
/// connection closes, running runs are canceled and the process exits. See docs/code-server-protocol.md.
/// </summary>
/// <remarks>Runs' task calls go to the agent (<c>Tasks/DeployedTaskCaller</c>); <paramref name="tasks"/> are listed, so the
/// location is known as their pool, and run when the agent asks (<c>run_task</c>) for a deployed call.</remarks>
internal sealed class CodeServer(IReadOnlyList<JobDefinition> jobs, TimeProvider time, IReadOnlyList<TaskDefinition>? tasks = null)
{
    private static readonly TimeSpan DefaultShutdownGrace = TimeSpan.FromSeconds(30);

    private readonly Channel<Outgoing> _outbox = Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, ActiveRun> _runs = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<string, JobDefinition> _jobsByName = jobs.ToDictionary(j => j.Name, StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _tasks = new(StringComparer.Ordinal);
    private DeployedTaskCaller? _calls;
    private bool _acceptingRuns = true;

    private sealed record ActiveRun(Task<RunOutcome> Completion, CancellationTokenSource Cancellation);

    /// <summary>A frame to write; <paramref name="Written"/> completes once it has reached the socket.</summary>
    private readonly record struct Outgoing(byte[] Frame, TaskCompletionSource? Written);

    public async Task<int> ServeAsync(string socketPath, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        return await ServeAsync(stream, cancellationToken).ConfigureAwait(false);
    }

    public async Task<int> ServeAsync(Stream stream, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        _calls = new DeployedTaskCaller(Send);
        var writer = WriteLoopAsync(stream);
        Send(new HelloMessage(ProtocolInfo.Version, ProtocolInfo.SdkVersion, Environment.ProcessId, jobs.Count));

        var reader = new FrameReader(stream, ProtocolInfo.MaxFrameBytes);
        try
        {
            while (await reader.ReadAsync(linked.Token).ConfigureAwait(false) is { } frame)
            {
                if (frame.TooLarge)
                {
                    SendError(null, "frame_too_large", $"a request was larger than {ProtocolInfo.MaxFrameBytes} bytes and was ignored");
                    continue;
                }

                if (frame.Bytes is { Length: > 0 } bytes)
                {
                    Handle(bytes);
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // A shutdown request ended the loop; its reply is already queued.
        }
        catch (IOException)
        {
            // The agent went away.
        }

        // Whether shut down or disconnected: no run outlives the connection it reports to.
        foreach (var run in _runs.Values)
        {
            await run.Cancellation.CancelAsync().ConfigureAwait(false);
        }

        foreach (var task in _tasks.Values)
        {
            await task.CancelAsync().ConfigureAwait(false);
        }

        await Task.WhenAll(_runs.Values.Select(r => r.Completion)).ConfigureAwait(false);
        _outbox.Writer.TryComplete();
        await writer.ConfigureAwait(false);
        return 0;
    }

    private void Handle(byte[] bytes)
    {
        CodeServerRequest request;
        try
        {
            request = JsonSerializer.Deserialize(bytes, ProtocolJson.Wire.CodeServerRequest) ?? throw new JsonException("a request must be a JSON object");
        }
        catch (Exception exception) when (exception is JsonException or NotSupportedException or InvalidOperationException)
        {
            // Rare and never on the hot path: read the request again, loosely, to say what was wrong with it.
            var (id, code, message) = RequestProblem.Describe(bytes, exception);
            SendError(id, code, message);
            return;
        }

        switch (request)
        {
            case HealthRequest:
                Send(new HealthReply("ok", _runs.Count) { Id = request.Id });
                break;
            case ListRequest:
                Send(new DefinitionsReply(DefinitionsJson.Describe(jobs), DefinitionsJson.Describe(tasks ?? [])) { Id = request.Id });
                break;
            case StartRequest start:
                Start(start);
                break;
            case CancelRequest cancel:
                Cancel(cancel);
                break;
            case ShutdownRequest shutdown:
                _ = ShutdownAsync(shutdown);
                break;
            case RunTaskRequest runTask:
                RunTask(runTask);
                break;
            case CancelTaskRequest cancelTask:
                if (_tasks.TryGetValue(cancelTask.Call, out var running))
                {
                    running.Cancel();
                }

                Send(new OkReply { Id = request.Id });
                break;
            case TaskResultNotice result:
                _calls?.Complete(result);
                break;
            case TaskEventsNotice taskEvents:
                _calls?.Relay(taskEvents);
                break;
        }
    }

    private void Start(StartRequest request)
    {
        var (id, runId) = (request.Id, request.Run);
        if (string.IsNullOrEmpty(runId) || string.IsNullOrEmpty(request.Job))
        {
            SendError(id, "malformed", RequestProblem.StartNeeds);
            return;
        }

        if (!_acceptingRuns)
        {
            SendError(id, "shutting_down", $"this code server is shutting down and takes no new runs; run {runId} was not started");
            return;
        }

        if (!_jobsByName.TryGetValue(request.Job, out var job))
        {
            SendError(id, "unknown_job", $"this version defines no job '{request.Job}'; it defines: {string.Join(", ", _jobsByName.Keys.Order(StringComparer.Ordinal))}");
            return;
        }

        JobParameters parameters;
        try
        {
            var given = (request.Params ?? [])
                .ToDictionary(
                    pair => pair.Key,
                    pair => (Func<ParameterDefinition, object>)(definition => definition.Convert(JsonSerializer.SerializeToElement(pair.Value, ProtocolJson.Wire.JsonNode))),
                    StringComparer.Ordinal);
            parameters = job.Bind(given);
        }
        catch (ParameterException exception)
        {
            SendError(id, "bad_parameters", exception.Message);
            return;
        }

        var cancellation = new CancellationTokenSource();
        var frames = new RunEventFrames();
        var events = new RunEventStream(runId, time, e => _outbox.Writer.TryWrite(new Outgoing(frames.Frame(e), null)));
        var completion = new TaskCompletionSource<RunOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_runs.TryAdd(runId, new ActiveRun(completion.Task, cancellation)))
        {
            SendError(id, "duplicate_run", $"a run with id {runId} is already running here; give each run a new id");
            return;
        }

        var (release, traceparent) = (request.Release, request.Traceparent);
        var startedSent = SendAsync(new StartedReply(runId) { Id = id });
        _ = Task.Run(async () =>
        {
            try
            {
                // The reply leaves the process before the job's code runs: a job that kills the process at
                // once (Environment.FailFast) still leaves the agent knowing the run had started.
                await startedSent.ConfigureAwait(false);
                completion.SetResult(await new RunExecutor(time) { Parent = Traces.Parent(traceparent), Tasks = _calls ?? (ITaskCaller)UnavailableTaskCaller.Instance }.ExecuteAsync(job, parameters, release, events, cancellation.Token).ConfigureAwait(false));
            }
            catch (Exception exception)
            {
                // The executor reports op failures itself; reaching here is a bug in the SDK, reported as one.
                events.Emit(new RunEvent { Run = runId, Type = EventTypes.RunFailed, Job = job.Name, Reason = "the Skiff SDK failed while running the job", Error = ErrorInfo.From(exception) });
                completion.SetResult(RunOutcome.Failed);
            }
            finally
            {
                // The source is not disposed: a concurrent cancel or shutdown may still be holding it.
                _runs.TryRemove(runId, out _);
            }
        });
    }

    /// <summary>
    /// Runs a task for a deployed call, with its retries (the same <see cref="TaskAttempts"/> a local run uses), and replies
    /// with how it ended and the events it gave, which the agent carries back to the calling run.
    /// </summary>
    private void RunTask(RunTaskRequest request)
    {
        var id = request.Id;
        if (tasks?.FirstOrDefault(t => t.Name == request.Task) is not { } task)
        {
            SendError(id, "unknown_task", $"this version declares no task '{request.Task}'; it declares: {(tasks is { Count: > 0 } ? string.Join(", ", tasks.Select(t => t.Name)) : "none")}");
            return;
        }

        var cancellation = new CancellationTokenSource();
        if (!_tasks.TryAdd(request.Call, cancellation))
        {
            SendError(id, "duplicate_task", $"task call {request.Call} is already running here");
            return;
        }

        _ = Task.Run(async () =>
        {
            var gathered = new GatheredTaskEvents(request.Run, task.Name);
            // Live to the agent only when it names itself: an older agent would not read task_events frames.
            var live = request.Worker is null ? null : new LiveTaskEvents(request.Call, SendAsync);
            var events = new RunEventStream(request.Run, time, runEvent =>
            {
                // Attributed here to the worker, the release and the queue's delivery that served the call.
                runEvent = runEvent with { Worker = request.Worker, Release = request.Release, Delivery = request.Delivery };
                gathered.Add(runEvent);
                live?.Add(runEvent);
            });
            var pool = new PoolReference(request.Pool, request.Pin);
            var input = JsonSerializer.SerializeToUtf8Bytes(request.Input, ProtocolJson.Wire.JsonNode);
            var call = new TaskCall(pool, task.Name, request.TaskId, input, events, request.Op, request.Attempt, request.Traceparent, request.RedeliveryReason);
            TaskOutcome outcome;
            try
            {
                // Limited: more output would make the caller's result frame too large to be read, and the call would never end.
                var output = await TaskAttempts.RunAsync(task, call, request.Release, time, cancellation.Token, ProtocolInfo.MaxTaskPayloadBytes).ConfigureAwait(false);
                outcome = new TaskOutcome(true, System.Text.Json.Nodes.JsonNode.Parse(output));
            }
            catch (TaskCallException exception)
            {
                outcome = new TaskOutcome(false, Error: new ErrorInfo(exception.ErrorType ?? "", exception.Message, null));
            }
            catch (OperationCanceledException exception)
            {
                outcome = new TaskOutcome(false, Error: new ErrorInfo(typeof(OperationCanceledException).FullName!, $"task '{task.Name}' was canceled: {exception.Message}", null));
            }
            catch (Exception exception)
            {
                // TaskAttempts reports the task's own failures as TaskCallException; reaching here is a bug in the SDK.
                outcome = new TaskOutcome(false, Error: ErrorInfo.From(exception));
            }
            finally
            {
                _tasks.TryRemove(request.Call, out _);
            }

            if (live is not null)
            {
                await live.CompleteAsync().ConfigureAwait(false);
            }

            // Numbered again by the calling run's stream, which skips those it had live (by delivery and number here).
            Send(new TaskDoneReply(outcome with { Events = gathered.ToList() }) { Id = id });
        });
    }

    private void Cancel(CancelRequest request)
    {
        if (!_runs.TryGetValue(request.Run, out var run))
        {
            SendError(request.Id, "unknown_run", $"no run {request.Run} is running here");
            return;
        }

        run.Cancellation.Cancel();
        Send(new OkReply(request.Run) { Id = request.Id });
    }

    /// <summary>Stops taking runs, lets running ones finish within the grace period, cancels the rest, then replies and ends.</summary>
    private async Task ShutdownAsync(ShutdownRequest request)
    {
        _acceptingRuns = false;
        var grace = request.GraceMs is { } ms ? TimeSpan.FromMilliseconds(ms) : DefaultShutdownGrace;
        var running = Task.WhenAll(_runs.Values.Select(r => r.Completion));
        var graceOver = Task.Delay(grace, time);
        if (await Task.WhenAny(running, graceOver).ConfigureAwait(false) == graceOver)
        {
            foreach (var run in _runs.Values)
            {
                await run.Cancellation.CancelAsync().ConfigureAwait(false);
            }

            await running.ConfigureAwait(false);
        }

        Send(new OkReply(null) { Id = request.Id });
        await _stopping.CancelAsync().ConfigureAwait(false);
    }

    private void SendError(long? id, string code, string message) => Send(new ErrorReply(code, message) { Id = id });

    private void Send(CodeServerMessage message) => _outbox.Writer.TryWrite(new Outgoing(ProtocolJson.Frame(message, ProtocolJson.Wire.CodeServerMessage), null));

    private Task SendAsync(CodeServerMessage message)
    {
        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_outbox.Writer.TryWrite(new Outgoing(ProtocolJson.Frame(message, ProtocolJson.Wire.CodeServerMessage), written)))
        {
            written.TrySetResult();
        }

        return written.Task;
    }

    private async Task WriteLoopAsync(Stream stream)
    {
        var flushed = new List<TaskCompletionSource>();

        // A log event's frame is ~200 bytes: written to the socket one by one, each was a send() of its own (50,000 for a
        // run logging 50,000 lines, and as many reads on the agent's side). Gathered here, a burst goes out in 64 KiB
        // writes. Not disposed: that would close the connection, which the caller owns.
        var buffered = new BufferedStream(stream, 64 * 1024);
        try
        {
            // Write everything queued, then flush once: a burst of events costs one flush.
            while (await _outbox.Reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (_outbox.Reader.TryRead(out var item))
                {
                    await buffered.WriteAsync(item.Frame).ConfigureAwait(false);
                    if (item.Written is not null)
                    {
                        flushed.Add(item.Written);
                    }
                }

                await buffered.FlushAsync().ConfigureAwait(false);
                flushed.ForEach(written => written.TrySetResult());
                flushed.Clear();
            }
        }
        catch (IOException)
        {
            // The agent went away; the read loop notices too and cancels the runs.
        }
        finally
        {
            flushed.ForEach(written => written.TrySetResult());
            while (_outbox.Reader.TryRead(out var item))
            {
                item.Written?.TrySetResult();
            }
        }
    }
}
