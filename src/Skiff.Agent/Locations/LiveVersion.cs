using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Skiff.Agent.CodeServers;
using Skiff.Core;
using Skiff.Core.Materialization;

namespace Skiff.Agent.Locations;

/// <summary>
/// The code server of one release on one location, kept up: a crash is followed by a restart after an
/// exponentially growing, jittered wait; too many crashes within the window leave it unhealthy and down,
/// reported, instead of restarting forever.
/// </summary>
internal sealed class LiveVersion : IAsyncDisposable
{
    private readonly AgentOptions _options;
    private readonly TimeProvider _time;
    private readonly Action<AgentReportKind, string> _report;
    private readonly Func<CancellationToken, Task> _ensureIntact;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Queue<DateTimeOffset> _crashes = new();
    private readonly Task _supervision;
    private readonly ILogger _logger;
    private CodeServerProcess? _server;

    // Tasks running on this version now, and since when it has had none: what ends the drain of a replaced release.
    private readonly Lock _use = new();
    private int _tasksRunning;
    private long _idleSince;
    private bool _retired;
    private TaskCompletionSource _tasksEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Completed and replaced whenever the code server goes down, comes back or is given up on: what a task waits on.
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public LiveVersion(
        string location,
        MaterializeOutcome materialized,
        CodeServerLaunch launch,
        CodeServerProcess server,
        VersionDefinitions definitions,
        AgentOptions options,
        TimeProvider time,
        Action<AgentReportKind, string> report,
        Func<CancellationToken, Task> ensureIntact)
    {
        _ensureIntact = ensureIntact;
        Location = location;
        Materialized = materialized;
        Launch = launch;
        Definitions = definitions.Jobs;
        Tasks = definitions.Tasks;
        _server = server;
        _options = options;
        _time = time;
        _report = report;
        _logger = options.LoggerFactory.CreateLogger<LiveVersion>();
        _idleSince = time.GetTimestamp();
        _supervision = SuperviseAsync();
    }

    public string Location { get; }

    public Digest Release => Materialized.Release.Release;

    public MaterializeOutcome Materialized { get; }

    public CodeServerLaunch Launch { get; }

    public JsonArray Definitions { get; private set; }

    /// <summary>The tasks this version serves; null when it declares none.</summary>
    public JsonArray? Tasks { get; private set; }

    public VersionHealth Health { get; private set; } = VersionHealth.Healthy;

    public int Restarts { get; private set; }

    /// <summary>The code server's process id (its own dotnet process, also when sandboxed); 0 while it is down.</summary>
    public int ProcessId => Volatile.Read(ref _server)?.ProgramProcessId ?? 0;

    /// <summary>
    /// The code server, once it serves: a task delivered while it restarts after a crash waits for it rather than failing
    /// its delivery (which would count towards the queue's delivery limit for nothing the task did).
    /// </summary>
    /// <exception cref="CodeServerException">The version is stopped or was left down as unhealthy.</exception>
    public async Task<CodeServerProcess> ServerAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var changed = Volatile.Read(ref _changed).Task;
            if (_stopping.IsCancellationRequested || Health == VersionHealth.Unhealthy)
            {
                throw new CodeServerException($"release {Release.Short} of '{Location}' is {(Health == VersionHealth.Unhealthy ? "unhealthy and left down" : "stopping")}; it runs no tasks.", "unavailable");
            }

            if (Volatile.Read(ref _server) is { Exited.IsCompleted: false } server)
            {
                return server;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Counts a task as running on this version until <see cref="EndTask"/>; false, counting nothing, once the version is
    /// retired (<see cref="DrainAsync"/> ended), when the task must go to another version.
    /// </summary>
    public bool TryBeginTask()
    {
        lock (_use)
        {
            if (_retired)
            {
                return false;
            }

            _tasksRunning++;
            return true;
        }
    }

    /// <summary>Ends what <see cref="TryBeginTask"/> counted.</summary>
    public void EndTask()
    {
        lock (_use)
        {
            if (--_tasksRunning == 0)
            {
                _idleSince = _time.GetTimestamp();
                _tasksEnded.TrySetResult();
                _tasksEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    /// <summary>Whether <see cref="DrainAsync"/> has retired it: it takes no further task.</summary>
    public bool Retired
    {
        get
        {
            lock (_use)
            {
                return _retired;
            }
        }
    }

    /// <summary>
    /// The drain of a replaced release (docs/tasks.md, "Pins"): completes, retiring the version (it takes no further
    /// task), once no task has run on it for <paramref name="idle"/>, counted from the later of now and its last task's
    /// end; at once when <paramref name="stop"/> is canceled (the agent stops, the location goes).
    /// </summary>
    public async Task DrainAsync(TimeSpan idle, CancellationToken stop)
    {
        lock (_use)
        {
            // A version replaced while idle waits the whole period: calls pinned to it may still be on their way.
            if (_tasksRunning == 0)
            {
                _idleSince = _time.GetTimestamp();
            }
        }

        try
        {
            while (true)
            {
                stop.ThrowIfCancellationRequested();
                Task wake;
                lock (_use)
                {
                    if (_tasksRunning > 0)
                    {
                        wake = _tasksEnded.Task.WaitAsync(stop);
                    }
                    else if (Health == VersionHealth.Unhealthy || (_time.GetElapsedTime(_idleSince) is var quiet && quiet >= idle))
                    {
                        // Left down after too many crashes, it would only refuse the calls pinned to it: it ends now.
                        _retired = true;
                        return;
                    }
                    else
                    {
                        // Woken early when its health changes (it may have been left down).
                        wake = Task.WhenAny(Task.Delay(idle - quiet, _time, stop), Volatile.Read(ref _changed).Task);
                    }
                }

                await wake.ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            lock (_use)
            {
                _retired = true;
            }
        }
    }

    private void Changed() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Asks the code server to exit and waits for it (killing it after the grace period).</summary>
    public async Task StopAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        Changed();
        await _supervision.ConfigureAwait(false);
        if (Volatile.Read(ref _server) is not { } server)
        {
            return;
        }

        try
        {
            using var grace = new CancellationTokenSource(_options.StopGrace);
            await server.ShutdownAsync(TimeSpan.Zero, grace.Token).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is OperationCanceledException or CodeServerException)
        {
            // It did not go quietly; disposing kills it.
        }

        await server.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopping.IsCancellationRequested)
        {
            await StopAsync().ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    private async Task SuperviseAsync()
    {
        string? failedRestart = null;
        while (true)
        {
            string crash;
            if (Volatile.Read(ref _server) is { } server)
            {
                try
                {
                    crash = $"the code server process ({server.DescribeProcessId()}) {(await server.Exited.WaitAsync(_stopping.Token).ConfigureAwait(false)).Describe()}";
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                if (_stopping.IsCancellationRequested)
                {
                    return;
                }

                Volatile.Write(ref _server, null);
                Changed();
                await server.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                crash = failedRestart!;
            }

            var now = _time.GetUtcNow();
            _crashes.Enqueue(now);
            while (_crashes.Count > 0 && now - _crashes.Peek() > _options.CrashWindow)
            {
                _crashes.Dequeue();
            }

            if (_crashes.Count >= _options.MaxCrashes)
            {
                Health = VersionHealth.Unhealthy;
                Changed();
                _report(AgentReportKind.Unhealthy, $"the code server crashed {_crashes.Count} times within {_options.CrashWindow}; it is left down until a new version is activated. Last: {crash}");
                return;
            }

            Health = VersionHealth.Restarting;
            var delay = Backoff(_crashes.Count);
            _report(AgentReportKind.Crashed, $"{crash}; restarting in {delay.TotalMilliseconds:0} ms");
            try
            {
                await Task.Delay(delay, _time, _stopping.Token).ConfigureAwait(false);
                // The crash may have been the edit of a file it runs: the restart runs the code that was deployed.
                await _ensureIntact(_stopping.Token).ConfigureAwait(false);
                var restarted = await CodeServerProcess.StartAsync(Launch, _options.ActivationTimeout, _stopping.Token).ConfigureAwait(false);
                Volatile.Write(ref _server, restarted);
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                deadline.CancelAfter(_options.ActivationTimeout);
                try
                {
                    var listed = await restarted.ListAsync(deadline.Token).ConfigureAwait(false);
                    (Definitions, Tasks) = (listed.Jobs, listed.Tasks);
                }
                catch (Exception exception) when (exception is CodeServerException || (exception is OperationCanceledException && !_stopping.IsCancellationRequested))
                {
                    // Up but not answering: stop it, so the next turn counts a crash instead of waiting forever.
                    Volatile.Write(ref _server, null);
                    await restarted.DisposeAsync().ConfigureAwait(false);
                    throw new CodeServerException($"the restarted code server did not list its definitions: {exception.Message}");
                }

                Restarts++;
                Health = VersionHealth.Healthy;
                Changed();
                _report(AgentReportKind.Restarted, $"the code server is serving again ({restarted.DescribeProcessId()}, restart {Restarts})");
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (CodeServerException exception)
            {
                // A failed restart counts as one more crash on the next turn, with a longer wait.
                failedRestart = $"a restart failed: {exception.Message}";
            }
            catch (Exception exception)
            {
                // Anything else (a cache folder that cannot be repaired, a bug) must not end supervision unseen: it
                // counts as a crash too, so the code server is restarted or, after too many, reported unhealthy.
                Log.SupervisionFailed(_logger, exception, Location, Release.Short);
                failedRestart = $"a restart failed: {exception.GetType().Name}: {exception.Message}";
            }
        }
    }

    private TimeSpan Backoff(int crashes)
    {
        var exponential = _options.RestartBackoff.TotalMilliseconds * Math.Pow(2, crashes - 1);
        var capped = Math.Min(exponential, _options.MaxRestartBackoff.TotalMilliseconds);
        // ±20% jitter, so code servers that crashed together do not restart in lockstep.
        var jitter = 0.8 + (Random.Shared.NextDouble() * 0.4);
        return TimeSpan.FromMilliseconds(capped * jitter);
    }

}
