using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Core.Limits;
using Skiff.Core.Manifests;
using Skiff.Core.Messaging;
using Skiff.Sdk.Tracing;
using Skiff.Server.Agents;
using Skiff.Server.Api;
using Skiff.Server.Blobs;
using Skiff.Server.Coordination;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Server.Metrics;
using Skiff.Server.Variables;

namespace Skiff.Server.Deployments;

/// <summary>
/// Registers releases and takes them live. Deployments of one location run one at a time in the order
/// they were registered (so the one registered later ends live); different locations proceed in parallel.
/// A deployment is recorded pending before anything happens and completed live or failed after, in one
/// transaction with the location's live pointer; a server that stops in between marks it failed on start.
/// </summary>
/// <remarks>
/// Servers sharing the store keep that order through it: a deployment goes ahead once it is the oldest pending
/// one of its location (<see cref="IMetadataStore.ListPendingDeploymentsAsync"/>), and each one that finishes
/// is announced on the bus. Within one server the deployments of a location also queue in memory, so in
/// embedded mode the store is only asked to confirm what the queue already decided. Each deployment records
/// the server driving it; one left pending by a server that stopped heartbeating is failed by another
/// (<see cref="FailOrphanedDeploymentsAsync"/>), which also lets the deployments queued behind it go ahead.
/// </remarks>
internal sealed class Deployer
{
    /// <summary>The bus topic announcing that a deployment of a location (the key) finished.</summary>
    internal const string Topic = "deploy";

    /// <summary>
    /// How long a deployment already recorded pending waits for a metadata store that cannot be reached before it
    /// gives up on that step: long enough for PostgreSQL to restart or fail over, short enough for a client waiting.
    /// </summary>
    private static readonly TimeSpan OutagePatience = TimeSpan.FromSeconds(30);

    private readonly SemaphoreSlim _registration = new(1, 1);
    private readonly Dictionary<string, Task> _tails = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _finished = new(StringComparer.Ordinal);

    // This server's deployments whose start or end it could not record, the metadata store being unreachable for
    // longer than it waited: each may be pending in the store with no one to finish it, so the sweep
    // (FailOrphanedDeploymentsAsync) fails it once the store is back.
    private readonly ConcurrentDictionary<string, byte> _abandoned = new(StringComparer.Ordinal);
    private readonly IMetadataStore _store;
    private readonly IBlobStore _blobs;
    private readonly AgentHub _agents;
    private readonly IServerBus _bus;
    private readonly TimeProvider _time;

    /// <summary>Where each deployment's outcome is logged.</summary>
    public ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>Where each deployment that ends here is counted, with its stages.</summary>
    public ServerMetrics Metrics { get; init; } = ServerMetrics.Discard;

    /// <summary>The locations' environments (docs/env.md), given to each activation; null: none, and changes are refused.</summary>
    public LocationVariables? Variables { get; init; }

    public Deployer(IMetadataStore store, IBlobStore blobs, AgentHub agents, IServerBus bus, TimeProvider time)
    {
        _store = store;
        _blobs = blobs;
        _agents = agents;
        _bus = bus;
        _time = time;
        bus.Subscribe((topic, location) =>
        {
            if (topic == Topic)
            {
                Signal(location);
            }
        });
    }

    /// <summary>
    /// Registers a deployment of a stored release and takes it live; returns it finished (live or failed). Its path
    /// is what the server held before: <see cref="DeploymentPaths.Unchanged"/> when the release was registered
    /// already, <see cref="DeploymentPaths.Fast"/> when only its environment was, else <see cref="DeploymentPaths.Full"/>.
    /// </summary>
    /// <exception cref="ReleaseIncompleteException">The release, its environment or a blob they name is not stored.</exception>
    public Task<DeploymentRecord> DeployAsync(DeploymentRequest request, CancellationToken cancellationToken) =>
        DeployAsync(request, rollbackOf: null, change: null, cancellationToken);

    /// <summary>
    /// Puts back the release of <paramref name="deploymentId"/>, or by default the last release that was live on the
    /// location before the current one, as a new deployment (path <see cref="DeploymentPaths.Rollback"/>) with the
    /// target's commit.
    /// </summary>
    /// <exception cref="NotFoundException">No such location, nothing live there, no such deployment, or nothing earlier to go back to.</exception>
    /// <exception cref="BadRequestException">The deployment asked for never went live.</exception>
    public async Task<DeploymentRecord> RollbackAsync(string location, string? deploymentId, string? who, CancellationToken cancellationToken)
    {
        var current = await _store.GetLocationAsync(location, cancellationToken).ConfigureAwait(false);
        if (current?.LiveRelease is null)
        {
            throw new NotFoundException(current is null
                ? $"there is no location '{location}'; `skiff locations` lists them, `skiff deploy PATH --location {location}` creates it."
                : $"location '{location}' has no live version yet; deploy one with `skiff deploy PATH --location {location}`.");
        }

        var history = await _store.ListDeploymentsAsync(location, 1000, cancellationToken).ConfigureAwait(false);
        DeploymentRecord target;
        if (deploymentId is not null)
        {
            target = history.FirstOrDefault(d => d.Id == deploymentId)
                ?? throw new NotFoundException($"location '{location}' has no deployment {deploymentId}; `skiff history {location}` lists them.");
            if (target.Outcome != DeploymentOutcomes.Live)
            {
                throw new BadRequestException($"deployment {deploymentId} never went live ({target.Outcome}); roll back to one that did.");
            }
        }
        else
        {
            target = history.FirstOrDefault(d => d.Outcome == DeploymentOutcomes.Live && d.Release != current.LiveRelease)
                ?? throw new NotFoundException($"location '{location}' has no earlier release that was live; nothing to roll back to.");
        }

        // The release put back was built from the target's commit.
        return await DeployAsync(
            new DeploymentRequest(location, target.Release.ToString(), 0, 0, null, who, null) { Commit = target.Commit, Dirty = target.Dirty },
            rollbackOf: target.Id,
            change: null,
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Changes a location's environment (docs/env.md). With a release live, that release is activated again with the
    /// environment changed, as a deployment of path <see cref="DeploymentPaths.Env"/> queued behind the location's others
    /// and health-gated like them: the change is stored only if it went live, so what is stored is what runs. A location
    /// with nothing live yet stores it for its first deployment, and null is returned.
    /// </summary>
    /// <exception cref="BadRequestException">The change cannot be made (a bad name or value, too much); nothing was changed.</exception>
    /// <exception cref="NotFoundException">No such location.</exception>
    /// <exception cref="SecretKeyException">A stored secret does not open with this server's key.</exception>
    public async Task<DeploymentRecord?> ChangeEnvironmentAsync(VariableChange change, CancellationToken cancellationToken)
    {
        var variables = Variables ?? throw new BadRequestException("this server keeps no location environments.");
        LocationVariables.Check(change);
        var location = await _store.GetLocationAsync(change.Location, cancellationToken).ConfigureAwait(false)
            ?? throw new NotFoundException($"there is no location '{change.Location}'; `skiff locations` lists them. A location is created by its first deploy (`skiff deploy PATH --location {change.Location}`); set its environment after that.");

        // Checked now so a change that is too big is refused at once; checked again in its turn, against what is stored then.
        var current = await variables.EnvironmentAsync(change.Location, cancellationToken).ConfigureAwait(false);
        if (change.Unset.FirstOrDefault(name => !current.ContainsKey(name)) is { } missing)
        {
            // A typo would otherwise restart the location for nothing and say it went live.
            throw new BadRequestException($"{missing} is not set on location '{change.Location}', so there is nothing to unset; `skiff env list {change.Location}` shows what is. Nothing was changed.");
        }

        LocationVariables.After(current, change);
        if (location.LiveDeployment is not { } liveId)
        {
            await variables.StoreAsync(change, cancellationToken).ConfigureAwait(false);
            return null;
        }

        // The live release, with its provenance, placement and limit, as a rollback puts one back.
        var live = await _store.GetDeploymentAsync(liveId, cancellationToken).ConfigureAwait(false);
        return await DeployAsync(
            new DeploymentRequest(change.Location, location.LiveRelease!.Value.ToString(), 0, 0, null, change.Who, null) { Commit = live?.Commit, Dirty = live?.Dirty },
            rollbackOf: null,
            change,
            cancellationToken).ConfigureAwait(false);
    }

    private async Task<DeploymentRecord> DeployAsync(DeploymentRequest request, string? rollbackOf, VariableChange? change, CancellationToken cancellationToken)
    {
        var received = _time.GetTimestamp();
        // A child of the request's span (and so of the CLI's deploy); its stages are children of it (docs/traces.md).
        using var span = ServerTraces.Source.StartActivity("deployment");
        span?.SetTag(Traces.Location, request.Location);
        span?.SetTag(Traces.Release, request.Release);
        try
        {
            var deployed = await DeployTracedAsync(request, rollbackOf, change, received, span, cancellationToken).ConfigureAwait(false);
            span?.SetTag(Traces.Outcome, deployed.Outcome);
            if (deployed.Outcome != DeploymentOutcomes.Live)
            {
                span.Failed(deployed.Error);
            }

            return deployed;
        }
        catch (Exception exception)
        {
            span.Failed(exception);
            throw;
        }
    }

    private async Task<DeploymentRecord> DeployTracedAsync(DeploymentRequest request, string? rollbackOf, VariableChange? change, long received, Activity? span, CancellationToken cancellationToken)
    {
        LocationNames.Validate(request.Location);
        var releaseId = Digest.Parse(request.Release);
        var memoryLimit = await MemoryLimitAsync(request, cancellationToken).ConfigureAwait(false);
        var placement = await PlacementAsync(request, cancellationToken).ConfigureAwait(false);
        if (request.Runs is { } runs && !RunHostings.Names.Contains(runs, StringComparer.Ordinal))
        {
            throw new Api.BadRequestException($"runs must be {RunHostings.Isolated} (a process per run) or {RunHostings.Shared} (a shared run host per release), not '{runs}'; nothing was deployed.");
        }

        ReleaseManifest manifest;
        string variant;
        using (ServerTraces.Source.StartActivity("deployment.verify"))
        {
            (manifest, variant) = await VerifyAsync(releaseId, cancellationToken).ConfigureAwait(false);
            if (await _store.GetReleaseAsync(releaseId, cancellationToken).ConfigureAwait(false) is null)
            {
                await EntryAssemblies.CheckInSourceAsync(_blobs, releaseId, manifest, cancellationToken).ConfigureAwait(false);
            }
        }

        var experimental = manifest.IsExperimental ? string.Join(" ", manifest.Experimental!.Select(p => $"{p.Id}@{p.Version}")) : null;
        // Before anything is registered, so a refused deploy leaves the location, its history and the releases as they were.
        // An environment change re-activates the live release as it is: refusing it would leave a location that was set to
        // --no-exp while an experimental release was live unable to change its variables until the next deploy.
        if (experimental is not null
            && change is null
            && await _store.GetLocationAsync(request.Location, cancellationToken).ConfigureAwait(false) is { RefusesExperimental: true })
        {
            throw new ExperimentalRefusedException(
                $"location '{request.Location}' refuses experimental releases, and release {releaseId.Short} carries {experimental} besides its environment; nothing was changed{(rollbackOf is null ? "" : " (this was a rollback)")}. Add the packages to the project and deploy that, or allow them with `skiff locations set {request.Location} --exp`.");
        }

        // Asked before the release is registered, which would register its environment too.
        var environmentKnown = await _store.IsEnvironmentRegisteredAsync(manifest.Environment, cancellationToken).ConfigureAwait(false);
        var releaseNew = await _store.RegisterReleaseAsync(
            new ReleaseRecord(releaseId, manifest.Environment, manifest.Source, manifest.EntryAssembly, manifest.SdkVersion, _time.GetUtcNow()),
            cancellationToken).ConfigureAwait(false);
        var path = rollbackOf is not null ? DeploymentPaths.Rollback
            : change is not null ? DeploymentPaths.Env
            : !releaseNew ? DeploymentPaths.Unchanged
            : environmentKnown ? DeploymentPaths.Fast
            : DeploymentPaths.Full;

        var record = new DeploymentRecord(
            NewId(),
            request.Location,
            releaseId,
            manifest.Environment,
            manifest.Source,
            path,
            request.BlobsUploaded,
            request.BytesUploaded,
            request.TimingsMs ?? new Dictionary<string, long>(),
            string.IsNullOrWhiteSpace(request.Who) ? "unknown" : request.Who,
            _time.GetUtcNow(),
            DeploymentOutcomes.Pending,
            Error: null,
            DefinitionsJson: null,
            FinishedAt: null,
            rollbackOf,
            memoryLimit,
            request.Commit,
            request.Commit is null ? null : request.Dirty,
            _bus.ServerId,
            placement.Replicas,
            placement.Canonical,
            change?.Summary)
        {
            Variant = variant,
            Experimental = experimental,
            MinReplicas = placement.MinReplicas,
        };
        span?.SetTag(Traces.Deployment, record.Id);
        span?.SetTag(Traces.DeploymentPath, path);

        Task previous;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await _registration.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _store.CreateDeploymentAsync(record, cancellationToken).ConfigureAwait(false);
            previous = _tails.GetValueOrDefault(request.Location) ?? Task.CompletedTask;
            _tails[request.Location] = done.Task;
        }
        catch (MetadataStoreException exception) when (exception.IsUnreachable)
        {
            // The connection may have broken while it committed: then it is pending, and nothing here goes on with it.
            _abandoned[record.Id] = 0;
            throw;
        }
        finally
        {
            _registration.Release();
        }

        try
        {
            // Behind the deployments of the location registered before this one, on this server or another.
            using (ServerTraces.Source.StartActivity("deployment.queue"))
            {
                await previous.ConfigureAwait(false);
                await WaitForTurnAsync(record).ConfigureAwait(false);
            }

            var activated = await ActivateAsync(record, received, change).ConfigureAwait(false);
            if (request.Runs is { } hosting && activated.Outcome == DeploymentOutcomes.Live)
            {
                // Once live, as the location's other settings from a deploy: a deploy that failed changes nothing. The next
                // run reads it; the agents need no activation for it.
                await _store.SetLocationRunsAsync(request.Location, hosting, CancellationToken.None).ConfigureAwait(false);
            }

            return activated;
        }
        finally
        {
            done.TrySetResult();
        }
    }

    /// <summary>
    /// The limit the deployment runs under, in canonical form: the one asked for, none when asked for
    /// <see cref="MemoryLimit.None"/>, else the location's current one, so a deploy or rollback that does not
    /// mention it keeps it.
    /// </summary>
    private async Task<string?> MemoryLimitAsync(DeploymentRequest request, CancellationToken cancellationToken)
    {
        switch (request.MemoryLimit?.Trim())
        {
            case null or "":
                return (await _store.GetLocationAsync(request.Location, cancellationToken).ConfigureAwait(false))?.MemoryLimit;
            case var text when text.Equals(MemoryLimit.None, StringComparison.OrdinalIgnoreCase):
                return null;
            case var text:
                return MemoryLimit.Parse(text).ToString();
        }
    }

    /// <summary>
    /// Where the deployment runs: the replicas and constraints asked for, each kept from the location's current
    /// placement when not given (so a rollback or a deploy that does not mention them keeps them).
    /// </summary>
    private async Task<Placement> PlacementAsync(DeploymentRequest request, CancellationToken cancellationToken)
    {
        if (request.Replicas is < 1 or > Placement.MaxReplicas)
        {
            throw new InvalidPlacementException($"replicas must be between 1 and {Placement.MaxReplicas}; got {request.Replicas}.");
        }

        if (request.MinReplicas is { } fewest && (request.Replicas is not { } most || fewest < 0 || fewest > most))
        {
            throw new InvalidPlacementException($"min_replicas must come with replicas (the most) and be between 0 and it; got {fewest}..{request.Replicas?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(none)"}. Write --replicas MIN..MAX, such as 0..8.");
        }

        Dictionary<string, string>? constraints = null;
        if (request.On is { } on)
        {
            try
            {
                constraints = on.Trim() is "" or "any" ? [] : Placement.ParseLabels([on], "constraint");
            }
            catch (ArgumentException exception)
            {
                throw new InvalidPlacementException("on: " + exception.Message);
            }
        }

        if (constraints is not null && request.Replicas is { } replicas)
        {
            return new Placement(replicas, constraints) { MinReplicas = request.MinReplicas };
        }

        var location = await _store.GetLocationAsync(request.Location, cancellationToken).ConfigureAwait(false);
        var current = location is null ? Placement.Default : Placement.FromStored(location.Replicas, location.Constraints, location.MinReplicas);
        // Replicas given set both ends (a plain N makes a pool fixed again); left out, both are kept.
        return new Placement(request.Replicas ?? current.Replicas, constraints ?? current.Constraints)
        {
            MinReplicas = request.Replicas is null ? current.MinReplicas : request.MinReplicas,
        };
    }

    private async Task<DeploymentRecord> ActivateAsync(DeploymentRecord record, long received, VariableChange? change)
    {
        var activating = _time.GetTimestamp();
        // Current while the agents are asked, so each activate request carries it to its agent.
        var activateSpan = ServerTraces.Source.StartActivity("deployment.activate");
        string outcome;
        string? error = null;
        string? definitions = null;
        string? tasks = null;
        // The agent decides whether anything needs starting (activating the release already live and healthy
        // is a no-op there). The wait is not tied to the HTTP request: a client that gives up must not leave
        // the deployment pending while the agent makes it live anyway.
        try
        {
            // Activating again after the store went away midway is safe: the agents already running the release
            // answer at once, and the placement is replaced only from what it is.
            var result = await MetadataOutage.RideOutAsync(
                async () =>
                {
                    var previous = (await _store.GetLocationAsync(record.Location, CancellationToken.None).ConfigureAwait(false))?.LiveRelease;
                    if (change is not null && previous != record.Release)
                    {
                        // An environment change names the release live when it was asked for. A deploy or rollback that
                        // went live while it waited its turn must not be undone by it: it fails, and nothing is stored.
                        return new AgentErrorReply(
                            "superseded",
                            $"the release live on '{record.Location}' changed to {previous?.Short ?? "none"} while this environment change waited its turn, and it was made for {record.Release.Short}; nothing was changed. Make the change again: it applies to what is live now");
                    }

                    // Read in this deployment's turn, so a change queued behind another applies to what that one stored.
                    var stored = Variables is null
                        ? new Dictionary<string, string>()
                        : await Variables.EnvironmentAsync(record.Location, CancellationToken.None).ConfigureAwait(false);
                    var reply = await _agents.ActivateAsync(
                        record.Location,
                        record.Release.ToString(),
                        record.MemoryLimit,
                        Placement.FromStored(record.Replicas, record.Constraints, record.MinReplicas),
                        previous?.ToString(),
                        change is null ? stored : LocationVariables.After(stored, change),
                        stored,
                        CancellationToken.None).ConfigureAwait(false);
                    if (change is not null && reply is ActivatedReply { Succeeded: true })
                    {
                        // Stored only once live (and before the deployment completes, so the next one in line reads it).
                        await Variables!.StoreAsync(change, CancellationToken.None).ConfigureAwait(false);
                    }

                    return reply;
                },
                _time,
                OutagePatience,
                CancellationToken.None).ConfigureAwait(false);
            switch (result)
            {
                case ActivatedReply { Succeeded: true } activated:
                    outcome = DeploymentOutcomes.Live;
                    definitions = activated.Definitions?.ToJsonString() ?? "[]";
                    tasks = activated.Tasks is { Count: > 0 } declared ? declared.ToJsonString() : null;
                    break;
                case ActivatedReply activated:
                    outcome = DeploymentOutcomes.Failed;
                    error = activated.Error;
                    break;
                default:
                    outcome = DeploymentOutcomes.Failed;
                    error = (result as AgentErrorReply)?.Message;
                    break;
            }
        }
        catch (AgentUnavailableException exception)
        {
            outcome = DeploymentOutcomes.Failed;
            error = exception.Message;
        }
        catch (Exception exception) when (exception is SecretKeyException or BadRequestException)
        {
            // The environment cannot be opened (another key) or the change no longer fits what was stored meanwhile.
            outcome = DeploymentOutcomes.Failed;
            error = exception.Message;
        }
        catch (MetadataStoreException exception) when (exception.IsUnreachable)
        {
            // Away for longer than it was waited for: the deployment is recorded failed once the store is back.
            outcome = DeploymentOutcomes.Failed;
            error = $"the metadata store could not be reached while this deployment was taken live, for more than {OutagePatience.TotalSeconds:0} s: {exception.Message}";
        }

        activateSpan?.SetTag(Traces.Outcome, outcome);
        if (error is not null)
        {
            activateSpan.Failed(error);
        }

        activateSpan?.Dispose();
        var timings = new Dictionary<string, long>(record.TimingsMs, StringComparer.Ordinal)
        {
            ["activate"] = (long)_time.GetElapsedTime(activating).TotalMilliseconds,
        };
        var clientStages = new[] { "restore", "build", "pack", "upload" }.Sum(stage => record.TimingsMs.GetValueOrDefault(stage));
        timings["total"] = clientStages + (long)_time.GetElapsedTime(received).TotalMilliseconds;
        try
        {
            await MetadataOutage.RideOutAsync(
                () => _store.CompleteDeploymentAsync(record.Id, outcome, error, definitions, tasks, timings, CancellationToken.None),
                _time,
                OutagePatience,
                CancellationToken.None).ConfigureAwait(false);
        }
        catch (MetadataConflictException)
        {
            // Another server took this one for dead (no heartbeat past the grace period) and failed it, or an attempt
            // whose connection broke while committing recorded it; what was recorded stands, and is what the caller
            // is told.
        }
        catch (MetadataStoreException exception) when (exception.IsUnreachable)
        {
            // Still away after the wait: the caller gets the store's error, and the sweep fails the deployment.
            _abandoned[record.Id] = 0;
            throw;
        }

        await FinishedAsync(record.Location).ConfigureAwait(false);
        var decided = (await MetadataOutage.RideOutAsync(() => _store.GetDeploymentAsync(record.Id, CancellationToken.None), _time, OutagePatience, CancellationToken.None).ConfigureAwait(false))!;
        Metrics.DeployEnded(decided);
        if (decided.Outcome == DeploymentOutcomes.Live)
        {
            Log.DeploymentLive(Logger, decided.Id, decided.Release.ToString(), decided.Location);
        }
        else
        {
            Log.DeploymentFailed(Logger, decided.Id, decided.Release.ToString(), decided.Location, decided.Error);
        }

        return decided;
    }

    /// <summary>Waits until no deployment of the location registered before this one (on any server) is still pending.</summary>
    private async Task WaitForTurnAsync(DeploymentRecord record)
    {
        while (true)
        {
            // Taken before reading, so a deployment finishing in between is not missed.
            var finished = _finished.GetOrAdd(record.Location, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            var pending = await MetadataOutage.RideOutAsync(() => _store.ListPendingDeploymentsAsync(CancellationToken.None), _time, OutagePatience, CancellationToken.None).ConfigureAwait(false);

            // This server's own deployments are ordered by the queue above already; one it left pending (its
            // store write failed) must not block the location forever.
            var first = pending.FirstOrDefault(d => d.Location == record.Location && (d.Server != _bus.ServerId || d.Id == record.Id));
            if (first is null || first.Id == record.Id)
            {
                return;
            }

            try
            {
                await finished.Task.WaitAsync(_bus.Backstop, _time).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // No notice: look again in case one was lost.
            }
        }
    }

    /// <summary>
    /// Fails the pending deployments of servers that stopped heartbeating more than <paramref name="gracePeriod"/>
    /// ago (killed, or cut off from the database), of servers not recorded at all, and this server's own whose end
    /// it could not record (the metadata store was away for longer than it waited). Run by every server on each
    /// heartbeat. Returns how many it failed.
    /// </summary>
    public async Task<int> FailOrphanedDeploymentsAsync(TimeSpan gracePeriod, CancellationToken cancellationToken)
    {
        // Taken before the store is read, so that one not pending there was recorded after all (or never created).
        var abandoned = _abandoned.Keys.ToHashSet(StringComparer.Ordinal);
        var pending = await _store.ListPendingDeploymentsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var id in abandoned.Where(id => !pending.Any(d => d.Id == id)))
        {
            _abandoned.TryRemove(id, out _);
        }

        bool Abandoned(DeploymentRecord d) => d.Server == _bus.ServerId && abandoned.Contains(d.Id);
        if (pending.All(d => d.Server == _bus.ServerId && !Abandoned(d)))
        {
            return 0;
        }

        var servers = (await _store.ListServersAsync(cancellationToken).ConfigureAwait(false)).ToDictionary(s => s.Id, StringComparer.Ordinal);
        var now = _time.GetUtcNow();
        var failed = 0;
        foreach (var deployment in pending.Where(d => d.Server != _bus.ServerId || Abandoned(d)))
        {
            var server = deployment.Server is { } id ? servers.GetValueOrDefault(id) : null;
            if (server is not null && server.Id != _bus.ServerId && now - server.HeartbeatAt <= gracePeriod)
            {
                continue;
            }

            var reason = server is null
                ? $"the server that drove this deployment ({deployment.Server ?? "unrecorded"}) stopped before it finished; deploy again"
                : server.Id == _bus.ServerId
                ? $"server '{server.Id}', which drove this deployment, could not record how it ended: the metadata store was unreachable for more than {OutagePatience.TotalSeconds:0} s; deploy again"
                : $"server '{server.Id}', which drove this deployment, stopped before it finished (its last heartbeat was at {server.HeartbeatAt:HH:mm:ss} UTC, more than {gracePeriod.TotalSeconds:0} s ago); deploy again";
            try
            {
                await _store.CompleteDeploymentAsync(deployment.Id, DeploymentOutcomes.Failed, reason, null, null, deployment.TimingsMs, cancellationToken).ConfigureAwait(false);
                failed++;
                Metrics.DeployOrphaned(deployment);
            }
            catch (MetadataConflictException)
            {
                // Finished meanwhile, by its server or by another one sweeping at the same time.
            }

            _abandoned.TryRemove(deployment.Id, out _);

            await FinishedAsync(deployment.Location).ConfigureAwait(false);
        }

        return failed;
    }

    private Task FinishedAsync(string location)
    {
        Signal(location);
        return _bus.PublishAsync(Topic, location);
    }

    private void Signal(string location)
    {
        if (_finished.TryRemove(location, out var finished))
        {
            finished.TrySetResult();
        }
    }

    /// <summary>
    /// Checks that the release manifest, its environment and every blob they name are in the store, and that their
    /// bytes match their digests, so a release never goes live with a blob missing or damaged. A blob this server
    /// hashed within <see cref="BlobStores.TrustVerified"/> (uploaded, deployed or scrubbed) is not hashed again: a
    /// fast deploy hashes only its new source. A damaged blob is quarantined, so the client's next deploy uploads it.
    /// Returns the manifest and its environment's variant, which the server reads rather than a client claims.
    /// </summary>
    private async Task<(ReleaseManifest Manifest, string Variant)> VerifyAsync(Digest release, CancellationToken cancellationToken)
    {
        try
        {
            var manifest = await ManifestLoader.LoadReleaseAsync(_blobs, release, cancellationToken).ConfigureAwait(false);
            var environment = await ManifestLoader.LoadEnvironmentAsync(_blobs, manifest.Environment, cancellationToken).ConfigureAwait(false);
            var blobs = environment.Packages.Select(p => p.Blob).Concat(manifest.ExperimentalBlobs()).Append(manifest.Source).Distinct().ToList();
            var written = await BlobStores.WrittenAtAsync(_blobs, blobs, cancellationToken).ConfigureAwait(false);
            var missing = written.Where(blob => blob.Value is null).Select(blob => blob.Key).Order().ToList();
            if (missing.Count > 0)
            {
                throw new ReleaseIncompleteException($"release {release} names {missing.Count} blob(s) the server does not have ({string.Join(", ", missing.Take(5))}); upload them, then deploy again.");
            }

            var damaged = new ConcurrentBag<Digest>();
            await Parallel.ForEachAsync(
                blobs,
                new ParallelOptions { MaxDegreeOfParallelism = BlobStores.HashesAtOnce, CancellationToken = cancellationToken },
                async (blob, ct) =>
                {
                    try
                    {
                        await _blobs.VerifyAsync(blob, BlobStores.TrustVerified, ct).ConfigureAwait(false);
                    }
                    catch (BlobIntegrityException)
                    {
                        damaged.Add(blob);
                    }
                }).ConfigureAwait(false);
            return damaged.IsEmpty
                ? (manifest, environment.Variant)
                : throw Damaged(release, [.. damaged.Order()]);
        }
        catch (BlobNotFoundException exception)
        {
            throw new ReleaseIncompleteException($"release {release} cannot be registered: {exception.Message}");
        }
        catch (BlobIntegrityException exception)
        {
            throw Damaged(release, [exception.Expected]);
        }
    }

    private static ReleaseIncompleteException Damaged(Digest release, IReadOnlyList<Digest> blobs) =>
        new($"release {release} did not go live: {blobs.Count} of its blob(s) on the server no longer match their digest ({string.Join(", ", blobs.Take(5))}); "
            + "they were quarantined, so the server now lacks them. Deploy again: the client uploads what the server lacks.");

    /// <summary>Time-ordered and unique: <c>d-</c>, milliseconds since the epoch, then random hex.</summary>
    private string NewId() =>
        $"d-{_time.GetUtcNow().ToUnixTimeMilliseconds():x11}{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
}
