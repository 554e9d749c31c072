using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Skiff.Agent.Blobs;
using Skiff.Agent.CodeServers;
using Skiff.Agent.Locations;
using Skiff.Agent.Runs;
using Skiff.Agent.Sandboxing;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Core.Limits;
using Skiff.Core.Locking;
using Skiff.Core.Manifests;
using Skiff.Core.Materialization;

namespace Skiff.Agent;

/// <summary>
/// The long-running host that makes the fast path fast. It keeps blobs and unpacked environments between
/// versions, runs one supervised code server per live version of each location, swaps versions only once
/// the new one is healthy, and runs every run from the release it was launched on: in a process of its own, or in
/// the release's shared run host when the location's runs are shared (<see cref="RunHosting"/>).
/// This in-process API is what the control plane and the embedded mode drive.
/// </summary>
internal sealed class AgentHost : IAsyncDisposable
{
    private readonly AgentOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly FetchingBlobStore _blobs;
    private readonly Materializer _materializer;
    private readonly StandbyPool _standbys;
    private readonly ProcessIsolation _isolation;
    private readonly ProcessLock _folderLock;
    private readonly ConcurrentDictionary<string, Location> _locations = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RunWorker> _runs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RunningTask> _tasks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Location, Digest Release), SharedRunHost> _sharedHosts = new();
    private readonly ConcurrentDictionary<(string Location, Digest Release), Lazy<Task<SharedRunHost>>> _startingHosts = new();
    private readonly Channel<AgentReport> _reports = Channel.CreateUnbounded<AgentReport>();
    private readonly Lock _evictionGate = new();

    // Old versions being stopped after a swap; disposing the agent waits for them.
    private readonly ConcurrentDictionary<Task, bool> _cleanups = new();

    // Replaced releases of pools draining (docs/tasks.md, "Pins"); disposing the agent ends their drains at once.
    private readonly ConcurrentDictionary<Task, bool> _drains = new();
    private readonly CancellationTokenSource _disposing = new();

    private sealed class Location(string name)
    {
        public string Name { get; } = name;

        public SemaphoreSlim Activation { get; } = new(1, 1);

        public LocationSettings Settings { get; set; } = LocationSettings.Default;

        public LiveVersion? Live { get; set; }

        /// <summary>Replaced releases of a pool still serving the tasks they run and calls pinned to them (docs/tasks.md, "Pins"), oldest first.</summary>
        public ImmutableList<LiveVersion> Draining { get; set; } = [];

        /// <summary>What its versions hold unpacked: the live one's and the draining ones'.</summary>
        public IEnumerable<MaterializeOutcome> Materialized =>
            Live is { } live ? [live.Materialized, .. Draining.Select(v => v.Materialized)] : Draining.Select(v => v.Materialized);

        /// <summary>Canceled when the location is deactivated: its draining releases stop at once.</summary>
        public CancellationTokenSource Gone { get; } = new();

        /// <summary>
        /// The version a task goes to: the live one, unless <paramref name="pin"/> picks another; then the newest draining
        /// release it is a prefix of. Null when no version here serves the pin.
        /// </summary>
        public LiveVersion? Serving(string? pin)
        {
            if (Live is not { } live || pin is null || live.Release.Hex.StartsWith(pin, StringComparison.Ordinal))
            {
                return Live;
            }

            return Draining.LastOrDefault(v => !v.Retired && v.Release.Hex.StartsWith(pin, StringComparison.Ordinal));
        }
    }

    /// <exception cref="SandboxUnavailableException"><see cref="AgentOptions.Sandbox"/> is set and this machine cannot sandbox.</exception>
    public AgentHost(AgentOptions options, IBlobSource source, TimeProvider time)
    {
        options.Validate();
        // One agent per cache: two would unpack into and evict from the same folders under each other.
        _folderLock = DataFolder.Lock(options.CacheDirectory, "skiff agent");
        try
        {
            _isolation = ProcessIsolation.Create(options);
        }
        catch
        {
            _folderLock.Dispose();
            throw;
        }

        // Ours now that we hold the lock: the socket folders of an agent that was killed here before.
        SocketFolders.RemoveLeftovers(options.CacheDirectory);
        _options = options;
        _logger = options.LoggerFactory.CreateLogger<AgentHost>();
        _time = time;
        _blobs = new FetchingBlobStore(new FileBlobStore(Path.Combine(options.CacheDirectory, "blobs")), source);
        _materializer = new Materializer(_blobs, Path.Combine(options.CacheDirectory, "releases"));
        // A standby starts before it knows its location, and a sandbox (user, visible folders) cannot be changed
        // once a process runs in it: a sandboxing agent starts every process cold (docs/agent.md, "Isolation").
        _standbys = new StandbyPool(options.StandbyHost, Path.Combine(options.CacheDirectory, "standby"), _isolation.Sandboxed ? 0 : options.Standbys);
    }

    /// <summary>The isolation in force, in one line: sandbox or not, and what bounds a location's processes.</summary>
    public string Isolation => _isolation.Description;

    /// <summary>Whether locations run sandboxed.</summary>
    public bool Sandboxed => _isolation.Sandboxed;

    /// <summary>Whether cgroups bound each location's memory (native included), CPU and processes, not only its managed heap.</summary>
    public bool BoundsMemory => _isolation.BoundsMemory;

    /// <summary>This agent's cgroups, when it keeps limits by them.</summary>
    internal Cgroups? Cgroups => _isolation.Cgroups;

    /// <summary>Code servers and run workers that started in a standby process rather than cold.</summary>
    public long StandbysTaken => _standbys.Taken;

    /// <summary>Completes when the swaps under way are done and the standbys they asked for have started: for tests and benchmarks.</summary>
    internal async Task StandbysStartedAsync()
    {
        await Task.WhenAll(_cleanups.Keys).ConfigureAwait(false);
        await _standbys.WhenStartedAsync().ConfigureAwait(false);
    }

    /// <summary>Completes when the drains of replaced pool releases under way have ended: for tests.</summary>
    internal Task DrainsEndedAsync() => Task.WhenAll(_drains.Keys);

    /// <summary>What happens to locations as it happens: activations, crashes, restarts, unhealthy code servers, out-of-memory runs.</summary>
    public ChannelReader<AgentReport> Reports => _reports.Reader;

    /// <summary>Blobs fetched from the source since the agent started.</summary>
    public long BlobsFetched => _blobs.FetchedBlobs;

    /// <summary>
    /// Re-checks the cache left by an earlier run of the agent: unpacked folders whose files no longer match
    /// what was unpacked are dropped (and unpacked again when needed). Returns how many were dropped.
    /// </summary>
    public async Task<int> StartAsync(CancellationToken cancellationToken) =>
        (await _materializer.VerifyAsync(cancellationToken).ConfigureAwait(false)).Count;

    public IReadOnlyList<LocationStatus> Locations =>
        [.. _locations.Values.Select(Describe).OfType<LocationStatus>().OrderBy(l => l.Name, StringComparer.Ordinal)];

    public LocationStatus? Describe(string location) =>
        _locations.TryGetValue(location, out var found) ? Describe(found) : null;

    /// <summary>
    /// Makes <paramref name="release"/> the live version of <paramref name="location"/>: fetch, unpack, start
    /// its code server, get its definitions — then swap. Until the new version has listed its definitions the
    /// old one stays live; if the new one fails, the old one keeps serving and the result says why.
    /// Activations of one location are serialized; different locations proceed in parallel.
    /// </summary>
    public async Task<ActivationResult> ActivateAsync(string location, Digest release, LocationSettings? settings, CancellationToken cancellationToken)
    {
        var state = _locations.GetOrAdd(location, name => new Location(name));
        await state.Activation.WaitAsync(cancellationToken).ConfigureAwait(false);
        var handedOff = false;
        try
        {
            var unchangedSettings = settings is null || settings == state.Settings;
            var previousSettings = state.Settings;
            state.Settings = settings ?? state.Settings;
            if (state.Live is { Health: VersionHealth.Healthy } current && current.Release == release && unchangedSettings)
            {
                // Already live and well (a reconnecting server re-sends what should run): nothing to start.
                return new ActivationResult(location, release, true, null, current.Definitions, new ActivationTimings(default, default, default, default, default), 0, 0) { Tasks = current.Tasks };
            }

            var result = await StartVersionAsync(state, release, cancellationToken).ConfigureAwait(false);
            if (result.Version is not { } version)
            {
                // The version still live runs with the settings it started with; the next activation compares with those
                // (an environment change that failed and is sent again must start again, not pass as already live).
                state.Settings = previousSettings;
                Report(location, release, AgentReportKind.ActivationFailed, result.Result.Error!);
                return result.Result;
            }

            var previous = state.Live;
            // A pool's replaced release drains (docs/tasks.md, "Pins"): it finishes the tasks it runs and serves calls
            // pinned to it. In the draining list before the swap, so that no pinned call finds it in neither place.
            var drains = previous is { Tasks.Count: > 0, Health: not VersionHealth.Unhealthy } && previous.Release != release;
            if (drains)
            {
                lock (state)
                {
                    state.Draining = state.Draining.Add(previous!);
                }
            }

            state.Live = version;
            Report(location, release, AgentReportKind.Activated, $"live in {result.Result.Timings.Total.TotalMilliseconds:0} ms");
            if (drains)
            {
                Drain(state, previous!, release);
            }

            // The new version serves from here on, so the caller hears now. Stopping the old one and evicting
            // happen after, still under the location's activation lock, so the next activation waits for them.
            var cleanup = FinishSwapAsync(state, drains ? null : previous, release);
            _cleanups[cleanup] = true;
            _ = cleanup.ContinueWith(done => _cleanups.TryRemove(done, out _), TaskScheduler.Default);
            handedOff = true;
            return result.Result;
        }
        finally
        {
            if (!handedOff)
            {
                state.Activation.Release();
            }
        }
    }

    private async Task FinishSwapAsync(Location state, LiveVersion? previous, Digest release)
    {
        try
        {
            if (previous is not null)
            {
                // Runs of the previous version live in their own processes and finish there; only its code
                // server, which takes no new runs now, is stopped.
                await previous.StopAsync().ConfigureAwait(false);
                Report(state.Name, previous.Release, AgentReportKind.Stopped, "replaced by " + release.Short);
            }

            // Also after a drain began: the replaced release's shared run host retires with its last run.
            RetireSharedRunHosts(state.Name);
            Evict();
            // The next version of this location, and its runs, start in a process that is already up.
            if (state.Live is { } live)
            {
                _standbys.Replenish(live.Launch);
            }
        }
        finally
        {
            state.Activation.Release();
        }
    }

    /// <summary>
    /// Keeps a pool's replaced release up (docs/tasks.md, "Pins"): the tasks it runs finish on it, and calls pinned to it
    /// still run on it, until none has run for <see cref="AgentOptions.DrainIdle"/>; then its code server stops.
    /// </summary>
    private void Drain(Location state, LiveVersion replaced, Digest replacedBy)
    {
        Report(state.Name, replaced.Release, AgentReportKind.Draining,
            $"replaced by {replacedBy.Short}: it finishes the tasks it runs and serves calls pinned to it, and stops once none has run for {Seconds(_options.DrainIdle)}");
        var drain = DrainAsync(state, replaced, replacedBy);
        _drains[drain] = true;
        _ = drain.ContinueWith(done => _drains.TryRemove(done, out _), TaskScheduler.Default);
    }

    private async Task DrainAsync(Location state, LiveVersion replaced, Digest replacedBy)
    {
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(_disposing.Token, state.Gone.Token))
        {
            await replaced.DrainAsync(_options.DrainIdle, stop.Token).ConfigureAwait(false);
        }

        bool stillRuns;
        lock (state)
        {
            state.Draining = state.Draining.Remove(replaced);
            // A rollback onto a release that still drained started it again: the release runs on, so its history must not
            // say stopped (the server accepts pins to a draining release by its newest report).
            stillRuns = state.Live?.Release == replaced.Release || state.Draining.Any(v => v.Release == replaced.Release);
        }

        await replaced.StopAsync().ConfigureAwait(false);
        if (!_disposing.IsCancellationRequested && (!stillRuns || state.Gone.IsCancellationRequested))
        {
            Report(state.Name, replaced.Release, AgentReportKind.Stopped, state.Gone.IsCancellationRequested ? "deactivated while it drained"
                : replaced.Health == VersionHealth.Unhealthy ? $"no longer draining: its code server was left down after too many crashes (replaced by {replacedBy.Short})"
                : $"drained: no task ran on it for {Seconds(_options.DrainIdle)} (replaced by {replacedBy.Short})");
        }

        Evict();
    }

    /// <summary>Stops a location's code server (and the replaced releases it drains) and forgets the location. Its running runs finish.</summary>
    public async Task DeactivateAsync(string location)
    {
        if (_locations.TryRemove(location, out var state))
        {
            await state.Gone.CancelAsync().ConfigureAwait(false);
        }

        if (state?.Live is { } live)
        {
            await live.StopAsync().ConfigureAwait(false);
            Report(location, live.Release, AgentReportKind.Stopped, "deactivated");
            RetireSharedRunHosts(location);
        }
    }

    /// <summary>
    /// Starts a run of <paramref name="job"/> on the live version of <paramref name="location"/>, in a process
    /// of its own. The run stays on that version even if a newer one goes live before it ends.
    /// </summary>
    /// <exception cref="CodeServerException">No live version, or the code server refused the run (unknown job, bad parameters).</exception>
    public Task<RunHandle> StartRunAsync(string location, string job, JsonObject? parameters, string? runId, CancellationToken cancellationToken) =>
        StartRunAsync(location, job, parameters, runId, traceparent: null, cancellationToken);

    /// <summary>As <see cref="StartRunAsync(string, string, JsonObject?, string?, CancellationToken)"/>, the run's spans continuing <paramref name="traceparent"/> (W3C).</summary>
    /// <exception cref="CodeServerException">No live version, or the code server refused the run (unknown job, bad parameters).</exception>
    public Task<RunHandle> StartRunAsync(string location, string job, JsonObject? parameters, string? runId, string? traceparent, CancellationToken cancellationToken) =>
        StartRunAsync(location, job, parameters, runId, traceparent, hosting: null, cancellationToken);

    /// <summary>
    /// As <see cref="StartRunAsync(string, string, JsonObject?, string?, string?, CancellationToken)"/>, in a process of its own
    /// or in the release's shared run host as <paramref name="hosting"/> says (null: as the location's settings say).
    /// </summary>
    /// <exception cref="CodeServerException">No live version, or the code server refused the run (unknown job, bad parameters).</exception>
    public async Task<RunHandle> StartRunAsync(string location, string job, JsonObject? parameters, string? runId, string? traceparent, RunHosting? hosting, CancellationToken cancellationToken)
    {
        if (!_locations.TryGetValue(location, out var state) || state.Live is not { } live)
        {
            throw new CodeServerException($"location '{location}' has no live version; deploy one first.", "unknown_location");
        }

        runId ??= "run-" + Guid.NewGuid().ToString("N")[..16];
        if ((hosting ?? state.Settings.Runs) == RunHosting.Shared)
        {
            return await StartSharedRunAsync(state, live, job, parameters, runId, traceparent, cancellationToken).ConfigureAwait(false);
        }

        await EnsureIntactAsync(location, live.Materialized, cancellationToken).ConfigureAwait(false);
        var process = await CodeServerProcess.StartAsync(live.Launch with { Name = $"run worker {runId} ({location} {live.Release.Short})", ProcessName = ProcessNames.RunWorker(location) }, _options.ActivationTimeout, cancellationToken, _standbys).ConfigureAwait(false);
        _standbys.Replenish(live.Launch);
        process.TaskCalls = CallTaskAsync;
        RunHandle inner;
        try
        {
            inner = await process.StartRunAsync(runId, job, parameters, live.Release.ToString(), traceparent, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await process.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return Relay(new RunWorker
        {
            RunId = runId,
            Location = location,
            Release = live.Release,
            Materialized = live.Materialized,
            Process = process,
            Inner = inner,
            Outer = new RunHandle(runId),
            MemoryLimit = state.Settings.MemoryLimit,
        });
    }

    /// <summary>Sends a run to the shared run host of the live release, starting the host first if it has none (or it died).</summary>
    private async Task<RunHandle> StartSharedRunAsync(Location state, LiveVersion live, string job, JsonObject? parameters, string runId, string? traceparent, CancellationToken cancellationToken)
    {
        while (true)
        {
            var host = await SharedRunHostAsync(state, live, cancellationToken).ConfigureAwait(false);
            if (!host.TryReserve())
            {
                // It died, or was retired, since it was looked up: the run goes to its successor.
                continue;
            }

            RunHandle inner;
            try
            {
                inner = await host.Process.StartRunAsync(runId, job, parameters, live.Release.ToString(), traceparent, cancellationToken).ConfigureAwait(false);
            }
            catch (CodeServerException exception) when (exception.Code == "exited")
            {
                // It died as the run was sent: the run never started there, so it may start in the next host.
                host.Unreserve();
                continue;
            }
            catch
            {
                host.Unreserve();
                throw;
            }

            return Relay(new RunWorker
            {
                RunId = runId,
                Location = state.Name,
                Release = live.Release,
                Materialized = live.Materialized,
                Process = host.Process,
                Inner = inner,
                Outer = new RunHandle(runId),
                MemoryLimit = state.Settings.MemoryLimit,
                Host = host,
            });
        }
    }

    /// <summary>The live shared run host of a location's release; one is started, once, when there is none.</summary>
    private async Task<SharedRunHost> SharedRunHostAsync(Location state, LiveVersion live, CancellationToken cancellationToken)
    {
        var key = (state.Name, live.Release);
        while (true)
        {
            if (_sharedHosts.TryGetValue(key, out var running) && !running.Process.Exited.IsCompleted)
            {
                return running;
            }

            // Started once however many runs ask at the same moment; the first to come starts it, the others wait for it.
            var starting = _startingHosts.GetOrAdd(key, _ => new Lazy<Task<SharedRunHost>>(() => StartSharedRunHostAsync(state, live)));
            try
            {
                return await starting.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                if (starting.Value.IsCompleted)
                {
                    _startingHosts.TryRemove(KeyValuePair.Create(key, starting));
                }
            }
        }
    }

    private async Task<SharedRunHost> StartSharedRunHostAsync(Location state, LiveVersion live)
    {
        // Not the caller's token: other runs wait on this start too.
        using var deadline = new CancellationTokenSource(_options.ActivationTimeout);
        await EnsureIntactAsync(state.Name, live.Materialized, deadline.Token).ConfigureAwait(false);
        var process = await CodeServerProcess.StartAsync(
            live.Launch with { Name = $"shared run host of {state.Name} ({live.Release.Short})", ProcessName = ProcessNames.SharedRunHost(state.Name) },
            state.Settings.ActivationTimeout ?? _options.ActivationTimeout,
            deadline.Token,
            _standbys).ConfigureAwait(false);
        _standbys.Replenish(live.Launch);
        process.TaskCalls = CallTaskAsync;
        process.DiedAs = "the shared run host died, ending every run it hosted: its process";
        var host = new SharedRunHost(state.Name, live.Materialized, process);
        _sharedHosts[(state.Name, live.Release)] = host;
        _ = process.Exited.ContinueWith(
            exited =>
            {
                // A host that was retired and shut down is gone as asked; any other end is a death its runs were told of.
                if (_sharedHosts.TryRemove(KeyValuePair.Create((state.Name, live.Release), host)))
                {
                    Report(state.Name, live.Release, AgentReportKind.RunHostDied,
                        $"the shared run host ({process.DescribeProcessId()}) {exited.Result.Describe()}; every run it hosted ended failed, and the next run starts a new one");
                    _ = process.DisposeAsync().AsTask();
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        return host;
    }

    /// <summary>Relays a started run's events to the handle the caller gets, and forgets the run when it has ended.</summary>
    private RunHandle Relay(RunWorker worker)
    {
        _runs[worker.RunId] = worker;
        _ = Task.Run(async () =>
        {
            try
            {
                var terminal = await worker.RelayAsync(_options.StopGrace).ConfigureAwait(false);
                if (terminal["out_of_memory"] is not null)
                {
                    Report(worker.Location, worker.Release, AgentReportKind.OutOfMemory, $"run {worker.RunId}: {(string?)terminal["reason"]}");
                }
            }
            finally
            {
                _runs.TryRemove(worker.RunId, out _);
                if (worker.Host is { } host)
                {
                    host.Unreserve();
                    RetireSharedRunHosts(worker.Location);
                }
            }
        }, CancellationToken.None);
        return worker.Outer;
    }

    /// <summary>
    /// Shuts down the shared run hosts of a location whose release is no longer live there (a newer one went live, or the
    /// location was deactivated) once their last run has ended. The live release's host stays up for the next run.
    /// </summary>
    private void RetireSharedRunHosts(string location)
    {
        var live = _locations.TryGetValue(location, out var state) ? state.Live?.Release : null;
        foreach (var (key, host) in _sharedHosts)
        {
            if (key.Location != location || key.Release == live || !host.TryRetire() || !_sharedHosts.TryRemove(KeyValuePair.Create(key, host)))
            {
                continue;
            }

            var stopped = StopSharedRunHostAsync(host);
            _cleanups[stopped] = true;
            _ = stopped.ContinueWith(done => _cleanups.TryRemove(done, out _), TaskScheduler.Default);
        }
    }

    private async Task StopSharedRunHostAsync(SharedRunHost host)
    {
        using var grace = new CancellationTokenSource(_options.StopGrace);
        try
        {
            await host.Process.ShutdownAsync(TimeSpan.Zero, grace.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // It would not exit; disposing kills it.
        }

        await host.Process.DisposeAsync().ConfigureAwait(false);
    }

    private static string Seconds(TimeSpan span) => $"{span.TotalSeconds:0} s";

    /// <summary>The process ids of the shared run hosts up now: for tests and benchmarks.</summary>
    internal IReadOnlyList<int> SharedRunHostProcessIds => [.. _sharedHosts.Values.Where(h => !h.Process.Exited.IsCompleted).Select(h => h.Process.ProgramProcessId)];

    /// <summary>
    /// Where the task calls of this agent's runs go (docs/tasks.md): the connection to the server, which queues them on
    /// their pools. Null (an agent driven in-process, with no server): every call is refused, saying so.
    /// </summary>
    /// <remarks>The second argument takes the task's events as they happen (<see cref="CodeServerProcess.TaskCalls"/>).</remarks>
    public Func<Skiff.Sdk.Protocol.CallTaskMessage, Action<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>?, CancellationToken, Task<Skiff.Sdk.Protocol.TaskResultNotice>>? TaskCalls { get; set; }

    private Task<Skiff.Sdk.Protocol.TaskResultNotice> CallTaskAsync(Skiff.Sdk.Protocol.CallTaskMessage call, Action<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>? liveEvents, CancellationToken cancellationToken) =>
        TaskCalls is { } forward
            ? forward(call, liveEvents, cancellationToken)
            : Task.FromResult(CodeServerProcess.Refused(call, "this agent is not connected to a server, which task calls go through"));

    /// <summary>
    /// Runs a task on the live version of its pool (<see cref="Skiff.Sdk.Protocol.RunTaskRequest.Pool"/>) for a deployed call (a worker of the pool took it from
    /// the queue), waiting out a restart of its code server, and returns how it ended. A pinned call
    /// (<see cref="Skiff.Sdk.Protocol.RunTaskRequest.Pin"/>) runs only on a release whose digest starts with the pin.
    /// </summary>
    /// <exception cref="CodeServerException">The pool has no live version here, the pin does not match it, or its code server went away while the task ran.</exception>
    /// <remarks>
    /// A call already running here (the server handed it out again after this agent's connection dropped) is not run
    /// twice: the repeat waits for the same outcome.
    /// </remarks>
    /// <remarks><paramref name="liveEvents"/> gets the task's events while it runs (<see cref="CodeServerProcess.RunTaskAsync"/>).</remarks>
    public async Task<Skiff.Sdk.Protocol.TaskOutcome> RunTaskAsync(Skiff.Sdk.Protocol.RunTaskRequest request, Action<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>? liveEvents, CancellationToken cancellationToken)
    {
        var cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var running = new RunningTask(cancellation, new TaskCompletionSource<Skiff.Sdk.Protocol.TaskOutcome>(TaskCreationOptions.RunContinuationsAsynchronously));
        while (!_tasks.TryAdd(request.Call, running))
        {
            if (_tasks.TryGetValue(request.Call, out var earlier))
            {
                cancellation.Dispose();
                return await earlier.Outcome.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        try
        {
            var outcome = await RunOwnTaskAsync(request, liveEvents, cancellation.Token).ConfigureAwait(false);
            running.Outcome.TrySetResult(outcome);
            return outcome;
        }
        catch (Exception exception)
        {
            running.Outcome.TrySetException(exception);
            // Observed here: with no repeat of the call waiting on it, the failure would be reported as unobserved.
            _ = running.Outcome.Task.Exception;
            throw;
        }
        finally
        {
            // Only the run that added the entry removes it, and only its own.
            _tasks.TryRemove(KeyValuePair.Create(request.Call, running));
            cancellation.Dispose();
        }
    }

    private async Task<Skiff.Sdk.Protocol.TaskOutcome> RunOwnTaskAsync(Skiff.Sdk.Protocol.RunTaskRequest request, Action<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>? liveEvents, CancellationToken cancellationToken)
    {
        if (!_locations.TryGetValue(request.Pool, out var state) || state.Live is null)
        {
            throw new CodeServerException($"pool '{request.Pool}' has no live version on this agent.", "unknown_location");
        }

        while (true)
        {
            if (state.Serving(request.Pin) is not { } version)
            {
                throw new CodeServerException(
                    $"the call is pinned to release {request.Pin} of pool '{request.Pool}', and this agent runs {string.Join(" and ", [state.Live.Release.Short, .. state.Draining.Select(v => v.Release.Short + " (draining)")])}; only a release starting with {request.Pin} serves it.",
                    "wrong_release");
            }

            // Counted while it runs, so that a draining release is not retired under it; one retired since it was picked is passed over.
            if (!version.TryBeginTask())
            {
                continue;
            }

            try
            {
                return await RunTaskOnAsync(state, version, request, liveEvents, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                version.EndTask();
            }
        }
    }

    private async Task<Skiff.Sdk.Protocol.TaskOutcome> RunTaskOnAsync(Location state, LiveVersion live, Skiff.Sdk.Protocol.RunTaskRequest request, Action<IReadOnlyList<Skiff.Sdk.Events.RunEvent>>? liveEvents, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(state.Settings.ActivationTimeout ?? _options.ActivationTimeout);
        CodeServerProcess server;
        try
        {
            server = await live.ServerAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CodeServerException($"the code server of '{request.Pool}' ({live.Release.Short}) did not come back within the activation timeout to run task {request.TaskId}.", "unavailable");
        }

        return await server.RunTaskAsync(request with { Release = live.Release.ToString() }, liveEvents, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Cancels a task this agent runs for a call (its caller stopped waiting); false when none runs.</summary>
    public bool CancelTask(string call)
    {
        if (!_tasks.TryGetValue(call, out var running))
        {
            return false;
        }

        try
        {
            running.Cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // It ended meanwhile.
        }

        return true;
    }

    /// <summary>Asks a running run to stop; it ends with run_canceled.</summary>
    public async Task CancelRunAsync(string runId, CancellationToken cancellationToken)
    {
        if (!_runs.TryGetValue(runId, out var worker))
        {
            throw new CodeServerException($"no run {runId} is running on this agent.", "unknown_run");
        }

        await worker.Process.CancelRunAsync(runId, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _disposing.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_drains.Keys).ConfigureAwait(false);
        await Task.WhenAll(_cleanups.Keys).ConfigureAwait(false);
        foreach (var location in _locations.Keys.ToList())
        {
            await DeactivateAsync(location).ConfigureAwait(false);
        }

        foreach (var worker in _runs.Values)
        {
            await worker.Process.DisposeAsync().ConfigureAwait(false);
        }

        // Taken out first, so that their ends read as asked for, not as deaths to report.
        foreach (var key in _sharedHosts.Keys)
        {
            if (_sharedHosts.TryRemove(key, out var host))
            {
                await host.Process.DisposeAsync().ConfigureAwait(false);
            }
        }

        await _standbys.DisposeAsync().ConfigureAwait(false);
        _isolation.Dispose();
        _reports.Writer.TryComplete();
        _folderLock.Dispose();
        _disposing.Dispose();
    }

    private async Task<(ActivationResult Result, LiveVersion? Version)> StartVersionAsync(Location state, Digest release, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var fetchedBefore = _blobs.FetchedBlobs;
        TimeSpan fetch = default, materialize = default, processStart = default, ready = default;
        ActivationResult Result(bool succeeded, string? error, VersionDefinitions? definitions, int unpacked) =>
            new(state.Name, release, succeeded, error, definitions?.Jobs, new ActivationTimings(fetch, materialize, processStart, ready, _time.GetElapsedTime(started)), _blobs.FetchedBlobs - fetchedBefore, unpacked)
            {
                Tasks = definitions?.Tasks,
            };

        MaterializeOutcome materialized;
        try
        {
            var stage = _time.GetTimestamp();
            using (AgentTraces.Source.StartActivity("activation.fetch"))
            {
                await FetchAsync(release, cancellationToken).ConfigureAwait(false);
            }

            fetch = _time.GetElapsedTime(stage);
            stage = _time.GetTimestamp();
            using (AgentTraces.Source.StartActivity("activation.unpack"))
            {
                materialized = await _materializer.MaterializeWithDetailsAsync(release, cancellationToken).ConfigureAwait(false);
            }

            materialize = _time.GetElapsedTime(stage);
            ReportRepaired(state.Name, materialized, materialized.Repaired);
        }
        catch (Exception exception) when (exception is SkiffException or HttpRequestException or IOException)
        {
            return (Result(false, $"release {release} could not be made ready{Kept(state)}: {exception.Message}", null, 0), null);
        }

        var launch = Launch(state, materialized);
        CodeServerProcess? server = null;
        try
        {
            var stage = _time.GetTimestamp();
            using (AgentTraces.Source.StartActivity("activation.start"))
            {
                server = await CodeServerProcess.StartAsync(launch, state.Settings.ActivationTimeout ?? _options.ActivationTimeout, cancellationToken, _standbys).ConfigureAwait(false);
            }

            processStart = _time.GetElapsedTime(stage);
            stage = _time.GetTimestamp();
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter((state.Settings.ActivationTimeout ?? _options.ActivationTimeout) - processStart);
            VersionDefinitions definitions;
            // The health gate: a version goes live once its code server answers with its definitions.
            using var health = AgentTraces.Source.StartActivity("activation.health");
            try
            {
                definitions = await server.ListAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new CodeServerException($"{launch.Name} did not list its definitions within the activation timeout.");
            }

            ready = _time.GetElapsedTime(stage);
            health?.Dispose();
            var version = new LiveVersion(state.Name, materialized, launch, server, definitions, _options, _time,
                (kind, message) => Report(state.Name, release, kind, message),
                ct => EnsureIntactAsync(state.Name, materialized, ct));
            var unpacked = materialized.PackagesUnpacked + (materialized.SourceUnpacked ? 1 : 0);
            return (Result(true, null, definitions, unpacked), version);
        }
        catch (CodeServerException exception)
        {
            if (server is not null)
            {
                await server.DisposeAsync().ConfigureAwait(false);
            }

            return (Result(false, $"release {release.Short} did not become live on '{state.Name}'{Kept(state)}: {exception.Message}", null, 0), null);
        }
    }

    /// <summary>
    /// Checks the folders of a release before another process starts from them (a run worker, a restarted code server),
    /// and unpacks again any that changed on disk since they were unpacked: a stat per file (docs/integrity.md).
    /// </summary>
    /// <exception cref="CodeServerException">A changed folder could not be unpacked again.</exception>
    private async Task EnsureIntactAsync(string location, MaterializeOutcome materialized, CancellationToken cancellationToken)
    {
        IReadOnlyList<Digest> repaired;
        try
        {
            repaired = await _materializer.EnsureIntactAsync(materialized, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is SkiffException or HttpRequestException or IOException)
        {
            throw new CodeServerException($"release {materialized.Release.Release.Short} could not be checked before starting a process from it: {exception.Message}");
        }

        ReportRepaired(location, materialized, repaired);
    }

    private void ReportRepaired(string location, MaterializeOutcome materialized, IReadOnlyList<Digest> repaired)
    {
        foreach (var folder in repaired)
        {
            var kind = folder == materialized.Manifest.Source ? "source" : "package";
            Report(location, materialized.Release.Release, AgentReportKind.Repaired,
                $"the unpacked {kind} folder {folder.Short} had changed on disk since it was unpacked; it was unpacked again from blob {folder} before a process started from it");
        }
    }

    /// <summary>What a failed activation leaves serving, for its error: nothing is said when nothing was live.</summary>
    private static string Kept(Location state) => state.Live is { } live ? $"; {live.Release.Short} stays live" : "";

    /// <summary>Brings every blob of the release into the local cache (manifests first, then the rest in parallel).</summary>
    private async Task FetchAsync(Digest release, CancellationToken cancellationToken)
    {
        var manifest = await ManifestLoader.LoadReleaseAsync(_blobs, release, cancellationToken).ConfigureAwait(false);
        var environment = await ManifestLoader.LoadEnvironmentAsync(_blobs, manifest.Environment, cancellationToken).ConfigureAwait(false);
        await Parallel.ForEachAsync(
            environment.Packages.Select(p => p.Blob).Concat(manifest.ExperimentalBlobs()).Append(manifest.Source).Distinct(),
            new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken },
            async (blob, ct) => await _blobs.EnsureAsync(blob, ct).ConfigureAwait(false)).ConfigureAwait(false);
    }

    /// <summary>The variables of a launch that differ between releases and locations of one shape; see <see cref="StandbyShape"/>.</summary>
    private static readonly IReadOnlySet<string> ReleaseVariables = new HashSet<string>(StringComparer.Ordinal)
    {
        "SKIFF_RELEASE", "SKIFF_LOCATION", MaterializedRelease.ContentRootVariable, "OTEL_SERVICE_NAME",
    };

    private CodeServerLaunch Launch(Location state, MaterializeOutcome materialized)
    {
        // The location's own variables first, so none of the agent's below can be replaced by one (the server refuses their
        // names too: docs/env.md).
        var environment = new Dictionary<string, string>(state.Settings.Environment, StringComparer.Ordinal)
        {
            ["SKIFF_RELEASE"] = materialized.Release.Release.ToString(),
            ["SKIFF_LOCATION"] = state.Name,
            ["DOTNET_NOLOGO"] = "1",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        };
        foreach (var (key, value) in materialized.Release.ExecEnvironment())
        {
            environment[key] = value;
        }

        // The agent's OTEL_* variables reach the job's processes, so a run's spans go where the agent's do (docs/traces.md),
        // also in a sandbox that starts them with nothing of the agent's environment.
        var traceVariables = AgentTraces.ExportVariables().ToList();
        foreach (var (key, value) in traceVariables)
        {
            environment[key] = value;
        }

        if (traceVariables.Count > 0)
        {
            // A job's spans are its location's, not the agent's (whose OTEL_SERVICE_NAME the process would inherit).
            environment["OTEL_SERVICE_NAME"] = state.Name;
        }

        if (state.Settings.MemoryLimit is { } limit)
        {
            // Under a cgroup limit the managed heap keeps a quarter of it for the runtime and native memory, as .NET
            // does by itself in a container: a managed over-allocation then fails as OutOfMemoryException in the run
            // before the kernel has to stop the whole process.
            foreach (var (key, value) in (_isolation.BoundsMemory ? new MemoryLimit(limit.Bytes / 4 * 3) : limit).Environment)
            {
                environment[key] = value;
            }
        }

        var release = materialized.Release;
        return new CodeServerLaunch(_options.DotnetHost, release.ExecArguments([]), release.SourceDirectory)
        {
            Name = $"code server of {state.Name} ({release.Release.Short})",
            ProcessName = ProcessNames.CodeServer(state.Name),
            Environment = environment,
            Standby = new StandbyShape(release.RuntimeConfigFile, release.DepsFile, release.PackagesDirectory, release.EntryAssemblyFile, [], ReleaseVariables),
            Isolation = _isolation.For(state.Name, materialized, state.Settings.MemoryLimit),
            AgentDataFolder = _options.CacheDirectory,
        };
    }

    /// <summary>Deletes unpacked folders no live version or run uses, least recently used first, until the cache fits its budget.</summary>
    private void Evict()
    {
        lock (_evictionGate)
        {
            var folders = _materializer.List();
            var total = folders.Sum(f => f.Bytes);
            if (total <= _options.CacheBudgetBytes)
            {
                return;
            }

            var inUse = new HashSet<Digest>();
            var materialized = _locations.Values.SelectMany(l => l.Materialized)
                .Concat(_runs.Values.Select(r => r.Materialized))
                .Concat(_sharedHosts.Values.Select(h => h.Materialized));
            foreach (var release in materialized)
            {
                inUse.UnionWith(release.Packages);
                inUse.Add(release.Manifest.Source);
            }

            foreach (var folder in folders.Where(f => !inUse.Contains(f.Digest)).OrderBy(f => f.LastUsedUtc))
            {
                if (total <= _options.CacheBudgetBytes)
                {
                    break;
                }

                _materializer.Delete(folder.Digest, folder.IsPackage);
                total -= folder.Bytes;
            }
        }
    }

    /// <summary>How many runs this agent is running now.</summary>
    public int RunningRuns => _runs.Count;

    /// <summary>
    /// What the cache holds: how many unpacked package and source folders, and the environments of the releases it
    /// runs now (an environment's packages stay cached after it stops, until evicted). Cheap enough to report
    /// often: folders are counted, not measured.
    /// </summary>
    public (int Folders, IReadOnlyList<string> Environments) CacheSummary()
    {
        var folders = _materializer.CountFolders();
        var environments = _locations.Values.SelectMany(l => l.Materialized)
            .Concat(_runs.Values.Select(r => r.Materialized))
            .Select(m => m.Manifest.Environment.ToString())
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        return (folders, environments);
    }

    /// <summary>The labels the server places locations by.</summary>
    public IReadOnlyDictionary<string, string> Labels => _options.Labels;

    /// <summary>The folder the cache is in, whose disk the agent reports.</summary>
    public string CacheDirectory => _options.CacheDirectory;

    /// <summary>Where the agent's logs go (<see cref="AgentOptions.LoggerFactory"/>).</summary>
    internal ILoggerFactory LoggerFactory => _options.LoggerFactory;

    /// <summary>How often to report load.</summary>
    public TimeSpan LoadInterval => _options.LoadInterval;

    private LocationStatus? Describe(Location state) =>
        state.Live is { } live
            ? new LocationStatus(state.Name, live.Release, live.Health, live.ProcessId, live.Restarts, live.Definitions, [.. state.Draining.Where(v => !v.Retired).Select(v => v.Release)])
            : null;

    private void Report(string location, Digest release, AgentReportKind kind, string message)
    {
        var level = kind is AgentReportKind.Crashed or AgentReportKind.Unhealthy or AgentReportKind.OutOfMemory or AgentReportKind.ActivationFailed
            ? LogLevel.Warning
            : LogLevel.Information;
        if (_options.LogReports)
        {
            Log.LocationReport(_logger, level, location, release.Short, kind.ToString(), message);
        }
        _reports.Writer.TryWrite(new AgentReport(_time.GetUtcNow(), location, release, kind, message));
    }

    /// <summary>A task this agent runs for a call: how to stop it, and its outcome for a repeat of the call to wait on.</summary>
    private sealed record RunningTask(CancellationTokenSource Cancellation, TaskCompletionSource<Skiff.Sdk.Protocol.TaskOutcome> Outcome);
}
