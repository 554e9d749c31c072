using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Skiff.Agent.Sandboxing;
using Skiff.Core.Messaging;
using Skiff.Sdk.Protocol;

namespace Skiff.Agent.CodeServers;

/// <summary>
/// One code-server process and the protocol connection to it (docs/code-server-protocol.md). The agent
/// listens on a private Unix socket and the process connects back, so it never outlives the agent.
/// Whatever way the process ends, every caller waiting on it is released with the reason: no request
/// and no run waits forever on a dead process.
/// </summary>
internal sealed class CodeServerProcess : IAsyncDisposable
{
    private const int StderrTailLines = 40;
    private const int MaxFrameBytes = 64 * 1024 * 1024;

    private readonly Process _process;
    private readonly Socket _connection;
    private readonly NetworkStream _stream;
    private readonly string _socketDirectory;
    private int _disposed;
    private readonly string _name;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly PendingRequests<CodeServerMessage> _requests = new(TimeProvider.System);
    private readonly ConcurrentDictionary<string, RunHandle> _runs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _calls = new(StringComparer.Ordinal);

    // The tasks this code server runs for deployed calls whose events someone takes live, by call.
    private readonly ConcurrentDictionary<string, Action<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>> _taskEvents = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource<ProcessExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly OutputTail _stderr;
    private readonly IsolatedProcess? _isolated;

    private CodeServerProcess(Process process, Socket connection, string socketDirectory, string name, OutputTail stderr, HelloMessage hello, IsolatedProcess? isolated)
    {
        ProgramProcessId = PeerProcessId(connection) ?? process.Id;
        _isolated = isolated;
        _process = process;
        _connection = connection;
        _stream = new NetworkStream(connection, ownsSocket: false);
        _socketDirectory = socketDirectory;
        _name = name;
        _stderr = stderr;
        Hello = hello;
        _ = ReadLoopAsync();
    }

    /// <summary>The code server's first message: protocol and SDK versions, process id.</summary>
    public HelloMessage Hello { get; }

    /// <summary>The process the agent started: the program's own, or bubblewrap's when it is sandboxed.</summary>
    public int ProcessId => _process.Id;

    /// <summary>
    /// The program's own process (the <c>dotnet</c> that serves, which <c>ps</c> shows under its <see cref="CodeServerLaunch.ProcessName"/>),
    /// as this agent's pid namespace numbers it: <see cref="ProcessId"/> unless sandboxed, when that is bubblewrap's
    /// and the program is a grandchild of it, numbered 2 in its own namespace (which is all its hello can say).
    /// </summary>
    public int ProgramProcessId { get; }

    /// <summary>The process for a report: "pid 1234", or "pid 1234, sandboxed by bwrap pid 1230".</summary>
    public string DescribeProcessId() =>
        ProgramProcessId == ProcessId ? $"pid {ProgramProcessId}" : $"pid {ProgramProcessId}, sandboxed by bwrap pid {ProcessId}";

    /// <summary>Completes when the process has exited (and the connection is closed), with how it ended.</summary>
    public Task<ProcessExit> Exited => _exited.Task;

    /// <summary>
    /// Starts the process, or has a waiting standby from <paramref name="standbys"/> become it, and waits until it
    /// has connected and said hello.
    /// </summary>
    /// <exception cref="CodeServerException">It exited, or did not connect within <paramref name="timeout"/>.</exception>
    public static async Task<CodeServerProcess> StartAsync(CodeServerLaunch launch, TimeSpan timeout, CancellationToken cancellationToken, StandbyPool? standbys = null)
    {
        // Socket paths are limited to 108 bytes; a short private folder under /tmp keeps well within it.
        var socketDirectory = Directory.CreateTempSubdirectory(SocketFolders.Prefix("cs", launch.AgentDataFolder)).FullName;
        var socketPath = Path.Combine(socketDirectory, "s");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        listener.Listen(1);

        IsolatedProcess? isolated = null;
        Process process;
        OutputTail stderr;
        try
        {
            isolated = launch.Isolation?.Prepare(socketDirectory);
            (process, stderr) = await TakeStandbyAsync(standbys, launch, socketPath, isolated, cancellationToken).ConfigureAwait(false) ?? StartCold(launch, socketPath, isolated);
        }
        catch
        {
            isolated?.Dispose();
            Directory.Delete(socketDirectory, recursive: true);
            throw;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var accept = listener.AcceptAsync(deadline.Token).AsTask();
        var exit = process.WaitForExitAsync(deadline.Token);
        try
        {
            if (await Task.WhenAny(accept, exit).ConfigureAwait(false) == exit && !accept.IsCompletedSuccessfully)
            {
                await exit.ConfigureAwait(false);
                var ended = new ProcessExit(process.ExitCode, await stderr.SnapshotAfterExitAsync().ConfigureAwait(false));
                // Exit code 0 without ever connecting: Main returned normally and never handed over to the
                // SDK; the usual cause is a project that does not call SkiffApp.RunAsync at all.
                throw new CodeServerException(process.ExitCode == 0
                    ? $"{launch.Name}: the entry assembly exited (code 0) without starting Skiff's code server: does Main call SkiffApp.RunAsync(args, …) and return its result?{(ended.StderrTail.Count == 0 ? "" : $" The end of its stderr:\n{string.Join('\n', ended.StderrTail)}")}"
                    : $"{launch.Name} {ended.Describe()}\nbefore it connected; it did not start.");
            }

            var connection = await accept.ConfigureAwait(false);
            byte[] line;
            try
            {
                line = await ReadHelloAsync(connection, deadline.Token).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is CodeServerException or SocketException)
            {
                connection.Dispose();
                // It hung up because it is exiting (a crash in its startup code): how it ended is what a reader needs.
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                var exited = true;
                try
                {
                    await process.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    exited = false;
                }

                if (!exited)
                {
                    throw;
                }

                var ended = new ProcessExit(process.ExitCode, await stderr.SnapshotAfterExitAsync().ConfigureAwait(false));
                throw new CodeServerException($"{launch.Name} {ended.Describe()}\nbefore it said hello; it did not start.");
            }
            catch
            {
                connection.Dispose();
                throw;
            }

            // Apart from the read: a hello this agent refuses (another protocol) is the reason, not how the process
            // exits once the agent hangs up on it.
            HelloMessage hello;
            try
            {
                hello = CodeServerHello.Check(line, launch.Name);
            }
            catch
            {
                connection.Dispose();
                throw;
            }

            return new CodeServerProcess(process, connection, socketDirectory, launch.Name, stderr, hello, isolated);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Abandon(process, isolated);
            Directory.Delete(socketDirectory, recursive: true);
            throw new CodeServerException(
                $"{launch.Name} did not connect within {timeout.TotalSeconds:0.#} s and was stopped; the end of its stderr:\n{string.Join('\n', stderr.Snapshot())}");
        }
        catch
        {
            Abandon(process, isolated);
            Directory.Delete(socketDirectory, recursive: true);
            throw;
        }
    }

    private static (Process Process, OutputTail Stderr) StartCold(CodeServerLaunch launch, string socketPath, IsolatedProcess? isolated)
    {
        List<string> arguments = [.. launch.Arguments, .. launch.ServeArguments(socketPath)];
        return Spawn(isolated?.Wrap(launch.FileName, arguments, launch.WorkingDirectory, launch.Environment)
            ?? new SpawnCommand(launch.FileName, arguments, launch.WorkingDirectory, launch.Environment));
    }

    /// <summary>A process that will not be used: killed, and its isolation cleaned up once it is gone.</summary>
    private static void Abandon(Process process, IsolatedProcess? isolated)
    {
        Kill(process);
        process.WaitForExit(TimeSpan.FromSeconds(5));
        isolated?.Dispose();
    }

    internal static (Process Process, OutputTail Stderr) Spawn(string fileName, IEnumerable<string> arguments, string workingDirectory, IEnumerable<KeyValuePair<string, string>> environment) =>
        Spawn(new SpawnCommand(fileName, [.. arguments], workingDirectory, environment));

    /// <summary>Starts a program the agent supervises: stdin closed, stdout drained, the end of stderr kept for when it dies.</summary>
    internal static (Process Process, OutputTail Stderr) Spawn(SpawnCommand command)
    {
        var startInfo = new ProcessStartInfo(command.FileName)
        {
            WorkingDirectory = command.WorkingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in command.Arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        if (!command.InheritEnvironment)
        {
            startInfo.Environment.Clear();
        }

        foreach (var (key, value) in command.Environment)
        {
            startInfo.Environment[key] = value;
        }

        var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        var stderr = new OutputTail(StderrTailLines);
        process.ErrorDataReceived += (_, e) => stderr.Add(e.Data);
        process.OutputDataReceived += (_, _) => { };
        ProcessStarter.Start(process);
        process.StandardInput.Close();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return (process, stderr);
    }

    /// <summary>A standby that became this launch, or null (none waiting, or it was gone): then the launch starts cold.</summary>
    private static async Task<(Process, OutputTail)?> TakeStandbyAsync(StandbyPool? standbys, CodeServerLaunch launch, string socketPath, IsolatedProcess? isolated, CancellationToken cancellationToken)
    {
        // A standby cannot join a sandbox after it started (the agent keeps none when it sandboxes); without one, it
        // joins its location's cgroups when it learns its location.
        if (isolated?.Scratch is not null || standbys?.TryTake(launch) is not { } standby)
        {
            return null;
        }

        try
        {
            isolated?.Adopt(standby.Process.Id);
            await standby.HandOverAsync(launch, [.. launch.Standby!.AppArguments, .. launch.ServeArguments(socketPath)], cancellationToken).ConfigureAwait(false);
            return (standby.Process, standby.Stderr);
        }
        catch (IOException)
        {
            await standby.DisposeAsync().ConfigureAwait(false);
            return null;
        }
    }

    public Task<HealthReply> HealthAsync(CancellationToken cancellationToken) =>
        RequestAsync<HealthReply>(new HealthRequest(), cancellationToken);

    /// <summary>The jobs and tasks this version defines, as the protocol describes them.</summary>
    public async Task<VersionDefinitions> ListAsync(CancellationToken cancellationToken)
    {
        var reply = await RequestAsync<DefinitionsReply>(new ListRequest(), cancellationToken).ConfigureAwait(false);
        return new VersionDefinitions(
            (JsonArray)JsonSerializer.SerializeToNode(reply.Jobs, ProtocolJson.Wire.IReadOnlyListJobDescription)!,
            reply.Tasks is { Count: > 0 } tasks ? (JsonArray)JsonSerializer.SerializeToNode(tasks, ProtocolJson.Wire.IReadOnlyListTaskDescription)! : null);
    }

    /// <summary>Starts a run; its events arrive on the returned handle.</summary>
    /// <exception cref="CodeServerException">The code server refused it (unknown job, bad parameters, …).</exception>
    public Task<RunHandle> StartRunAsync(string runId, string job, JsonObject? parameters, string? release, CancellationToken cancellationToken) =>
        StartRunAsync(runId, job, parameters, release, traceparent: null, cancellationToken);

    /// <summary>Starts a run whose spans continue <paramref name="traceparent"/> (W3C; null starts a new trace); its events arrive on the returned handle.</summary>
    /// <exception cref="CodeServerException">The code server refused it (unknown job, bad parameters, …).</exception>
    public async Task<RunHandle> StartRunAsync(string runId, string job, JsonObject? parameters, string? release, string? traceparent, CancellationToken cancellationToken)
    {
        var handle = new RunHandle(runId);
        if (!_runs.TryAdd(runId, handle))
        {
            throw new CodeServerException($"run {runId} is already running on {_name}.", "duplicate_run");
        }

        try
        {
            await RequestAsync<StartedReply>(new StartRequest(runId, job, parameters, release, traceparent), cancellationToken).ConfigureAwait(false);
            return handle;
        }
        catch
        {
            _runs.TryRemove(runId, out _);
            throw;
        }
    }

    /// <summary>
    /// Where the task calls of this process's runs go (the agent's connection to its server, docs/tasks.md), answered with
    /// how each ended. Null: every call is refused, saying the agent reaches no server.
    /// </summary>
    /// <remarks>
    /// The second argument takes the task's events as they happen on its pool (docs/tasks.md, "Live events"), for a call
    /// made live (<see cref="CallTaskMessage.Live"/>); null for one that takes them with its result only.
    /// </remarks>
    public Func<CallTaskMessage, Action<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>?, CancellationToken, Task<TaskResultNotice>>? TaskCalls { get; set; }

    /// <summary>
    /// Runs a task of this version for a deployed call and returns how it ended, with the events it gave. Canceling
    /// <paramref name="cancellationToken"/> cancels the task's token; this still waits for the task's end (canceled).
    /// <paramref name="liveEvents"/> gets the task's events as the code server sends them, while it runs (a request that
    /// names its <see cref="RunTaskRequest.Worker"/>), before this returns; it must not block.
    /// </summary>
    /// <exception cref="CodeServerException">The code server does not declare the task, or went away while it ran.</exception>
    public async Task<TaskOutcome> RunTaskAsync(RunTaskRequest request, Action<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>? liveEvents, CancellationToken cancellationToken)
    {
        using var cancel = cancellationToken.Register(() => _ = CancelTaskAsync(request.Call));
        if (liveEvents is not null)
        {
            _taskEvents[request.Call] = liveEvents;
        }

        try
        {
            return (await RequestAsync<TaskDoneReply>(request, CancellationToken.None).ConfigureAwait(false)).Outcome;
        }
        finally
        {
            _taskEvents.TryRemove(request.Call, out _);
        }
    }

    private async Task CancelTaskAsync(string call)
    {
        try
        {
            await RequestAsync<OkReply>(new CancelTaskRequest(call), CancellationToken.None).ConfigureAwait(false);
        }
        catch (CodeServerException)
        {
            // Gone, or the task ended meanwhile: nothing is left to cancel.
        }
    }

    public Task CancelRunAsync(string runId, CancellationToken cancellationToken) =>
        RequestAsync<OkReply>(new CancelRequest(runId), cancellationToken);

    /// <summary>Asks the code server to finish its runs (canceling them after <paramref name="grace"/>) and exit, and waits for it.</summary>
    public async Task<ProcessExit> ShutdownAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        if (!_exited.Task.IsCompleted)
        {
            try
            {
                await RequestAsync<OkReply>(new ShutdownRequest((long)grace.TotalMilliseconds), cancellationToken).ConfigureAwait(false);
            }
            catch (CodeServerException)
            {
                // Already on its way out; the exit below says how it ended.
            }
        }

        return await _exited.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// How the reason of a run this process still ran when it ended names the process, before how it ended ("was killed by
    /// SIGKILL …"): a shared run host says that every run it hosted ended with it.
    /// </summary>
    public string DiedAs { get; set; } = "the code server process";

    /// <summary>Sends raw bytes as a frame: for tests of how the code server treats bad input.</summary>
    internal async Task SendRawAsync(byte[] frame, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _stream.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Replies the code server sent without an id (to malformed or oversized frames), in order.</summary>
    internal System.Threading.Channels.Channel<ErrorReply> UnsolicitedErrors { get; } =
        System.Threading.Channels.Channel.CreateUnbounded<ErrorReply>();

    public async ValueTask DisposeAsync()
    {
        // A version being stopped and an agent shutting down may both dispose it.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        if (!_exited.Task.IsCompleted)
        {
            Kill(_process);
            try
            {
                await _exited.Task.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Killed but not reaped in time; the OS reaps it.
            }
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        _connection.Dispose();
        _process.Dispose();
        _isolated?.Dispose();
        _writeGate.Dispose();
        try
        {
            Directory.Delete(_socketDirectory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    /// <summary>Sends a request and waits for its reply; an error reply, or one of another kind, throws.</summary>
    private async Task<TReply> RequestAsync<TReply>(CodeServerRequest request, CancellationToken cancellationToken)
        where TReply : CodeServerMessage
    {
        var reply = await _requests.RequestAsync(
            async (id, token) =>
            {
                try
                {
                    await SendRawAsync(ProtocolJson.Frame(request with { Id = id }, ProtocolJson.Wire.CodeServerRequest), token).ConfigureAwait(false);
                }
                catch (IOException)
                {
                    // The process is going away; the read loop fails the request with how it ended.
                }
            },
            timeout: null,
            cancellationToken).ConfigureAwait(false);
        return reply switch
        {
            TReply expected => expected,
            // A refusal of the caller's input reads as the job's own words; which process said it is noise to them.
            ErrorReply { Code: "bad_parameters" or "unknown_job" } refused => throw new CodeServerException(refused.Message, refused.Code),
            ErrorReply error => throw new CodeServerException($"{_name}: {error.Message}", error.Code),
            _ => throw new CodeServerException($"{_name} answered a {request.GetType().Name} with a {reply.GetType().Name}.", "unexpected_reply"),
        };
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            var reader = new FrameReader(_stream, MaxFrameBytes);
            while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false) is { } frame)
            {
                if (frame.Bytes is not { Length: > 0 } bytes)
                {
                    continue;
                }

                if (TryReadRunEvent(bytes) is { } runEvent)
                {
                    Deliver(runEvent);
                }
                else if (JsonSerializer.Deserialize(bytes, ProtocolJson.Wire.CodeServerMessage) is { } message)
                {
                    Dispatch(message);
                }
            }
        }
        catch (Exception exception) when (exception is IOException or JsonException or NotSupportedException or ObjectDisposedException)
        {
            // A broken connection or a garbled message: either way the process is done for; see below.
        }

        // The connection is closed: the process exited or is about to. Wait for it, then release everyone.
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _process.WaitForExitAsync(grace.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill(_process);
            await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }

        var exit = new ProcessExit(_process.ExitCode, await _stderr.SnapshotAfterExitAsync().ConfigureAwait(false)) { OutOfMemory = _isolated?.OutOfMemory == true };
        _isolated?.Dispose();
        foreach (var run in _runs.Values.Where(r => !r.IsFinished))
        {
            run.Deliver(RunEvents.Failed(run.RunId, seq: null, DateTimeOffset.UtcNow, $"{DiedAs} {exit.Describe()}"));
        }

        _requests.Close(Gone(exit));
        foreach (var call in _calls.Values)
        {
            // Nobody is left to hear the result.
            CancelCall(call);
        }

        UnsolicitedErrors.Writer.TryComplete();
        _exited.TrySetResult(exit);
    }

    private void Dispatch(CodeServerMessage message)
    {
        switch (message)
        {
            case RunEventMessage { Event: var runEvent }:
                // Only a frame that does not start with its type (which the SDK always writes first) gets here.
                Deliver(RunEventJson.From(runEvent));
                break;
            case { Id: { } id } when _requests.TryComplete(id, message):
                break;
            case CallTaskMessage call:
                _ = ForwardCallAsync(call);
                break;
            case TaskEventsMessage taskEvents:
                if (_taskEvents.TryGetValue(taskEvents.Call, out var live))
                {
                    live(taskEvents.Events);
                }

                break;
            case CancelCallMessage cancel:
                if (_calls.TryRemove(cancel.Call, out var waiting))
                {
                    CancelCall(waiting);
                }

                break;
            case ErrorReply error:
                UnsolicitedErrors.Writer.TryWrite(error);
                break;
        }
    }

    /// <summary>Passes a run's task call on (<see cref="TaskCalls"/>) and writes its result back to the run's process.</summary>
    private async Task ForwardCallAsync(CallTaskMessage call)
    {
        using var cancellation = new CancellationTokenSource();
        if (!_calls.TryAdd(call.Call, cancellation))
        {
            return;
        }

        // The task's live events go to the run's process one batch after another, in the order they came, and before the
        // result (the relay ends before the result is written).
        var live = call.Live == true ? Channel.CreateUnbounded<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>(new UnboundedChannelOptions { SingleReader = true }) : null;
        var relaying = live is null ? Task.CompletedTask : RelayTaskEventsAsync(call.Call, live.Reader);
        TaskResultNotice notice;
        try
        {
            notice = TaskCalls is { } forward
                ? await forward(call, live is null ? null : events => live.Writer.TryWrite(events), cancellation.Token).ConfigureAwait(false)
                : Refused(call, "this agent is not connected to a server, which task calls go through; it was started without one (AgentHost alone)");
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            return;
        }
        finally
        {
            _calls.TryRemove(KeyValuePair.Create(call.Call, cancellation));
            live?.Writer.TryComplete();
            await relaying.ConfigureAwait(false);
        }

        try
        {
            await SendRawAsync(ProtocolJson.Frame(notice, ProtocolJson.Wire.CodeServerRequest), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is IOException or ObjectDisposedException)
        {
            // The run's process is gone; so is the op that waited.
        }
    }

    /// <summary>Hands a call's task events, as they happen on its pool, to the run's process that made the call.</summary>
    private async Task RelayTaskEventsAsync(string call, ChannelReader<IReadOnlyList<Skiff.Sdk.Events.RunEvent>> live)
    {
        await foreach (var events in live.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                await SendRawAsync(ProtocolJson.Frame(new TaskEventsNotice(call, events), ProtocolJson.Wire.CodeServerRequest), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is IOException or ObjectDisposedException)
            {
                // The run's process is gone; so is the op that waited.
            }
        }
    }

    /// <summary>
    /// Stops waiting for a call's result. The call may have ended meanwhile, its source disposed by
    /// <see cref="ForwardCallAsync"/>: that must not throw here, where it would stop the exit from being reported.
    /// </summary>
    private static void CancelCall(CancellationTokenSource call)
    {
        try
        {
            call.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // It ended meanwhile.
        }
    }

    /// <summary>The end of a call that was never queued, saying why.</summary>
    internal static TaskResultNotice Refused(CallTaskMessage call, string why) =>
        new(call.Call, new TaskOutcome(false, Error: new Skiff.Sdk.Events.ErrorInfo("", why, null)), "refused");

    private void Deliver(RunEventJson runEvent)
    {
        if (runEvent.Run is { } runId && _runs.TryGetValue(runId, out var handle))
        {
            handle.Deliver(runEvent);
        }
    }

    /// <summary>
    /// A run event frame (<c>{"type":"event","event":{…}}</c>, as <see cref="RunEventFrame"/> writes it) read straight
    /// into the event's text, seq, type and run; null for any other frame, which is read as a message.
    /// </summary>
    private static RunEventJson? TryReadRunEvent(byte[] frame)
    {
        var reader = new Utf8JsonReader(frame);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject
            || !reader.Read() || reader.TokenType != JsonTokenType.PropertyName || !reader.ValueTextEquals("type"u8)
            || !reader.Read() || reader.TokenType != JsonTokenType.String || !reader.ValueTextEquals("event"u8)
            || !reader.Read() || reader.TokenType != JsonTokenType.PropertyName || !reader.ValueTextEquals("event"u8)
            || !reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }

        return RunEventJson.Read(ref reader, frame);
    }

    private CodeServerException Gone(ProcessExit exit) => new($"{_name} is gone: the process {exit.Describe()}", "exited");

    /// <summary>The first line the code server sends, read byte by byte so no later message is consumed before the read loop starts.</summary>
    private static async Task<byte[]> ReadHelloAsync(Socket connection, CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            var read = await connection.ReceiveAsync(one, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new CodeServerException("the code server closed its connection before saying hello.");
            }

            if (one[0] == (byte)'\n')
            {
                return [.. line];
            }

            line.Add(one[0]);
        }
    }

    /// <summary>
    /// The process that connected (SO_PEERCRED), in this process's pid namespace: the kernel records the peer when it
    /// connects and translates its pid for the reader, so it is the program's own process however deep in a sandbox it
    /// is, and a standby that became it connected from its own process too. Null where the option does not exist.
    /// </summary>
    private static int? PeerProcessId(Socket connection)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        const int SolSocket = 1, SoPeerCred = 17;
        Span<byte> credentials = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        try
        {
            return connection.GetRawSocketOption(SolSocket, SoPeerCred, credentials) >= 4 && BitConverter.ToInt32(credentials) is > 0 and var pid ? pid : null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }
}
