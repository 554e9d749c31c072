using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Core.Messaging;
using Skiff.Server.Coordination;
using Skiff.Server.Metadata;
using Skiff.Server.Metrics;
using Skiff.Server.Runs;
using Skiff.Server.Variables;

namespace Skiff.Server.Agents;

/// <summary>
/// The agents connected to this server, and which agent hosts which location. A location goes to the
/// connected agent with the fewest locations and stays there while it is connected. When an agent
/// connects it is first asked to resend the events of its runs that the server missed while they were
/// apart, then every live location it should host is activated on it again, so an agent or server
/// restart converges back to what the metadata says. Runs of an agent that stays away longer than the
/// grace period are failed, so none is left running forever.
/// </summary>
/// <remarks>
/// Several servers may share the store: which server holds each agent's connection and which agent hosts each
/// location are recorded there, not in this process, so every server picks the same agent for a location. A
/// request for an agent connected to another server is passed to that server on the <see cref="IServerBus"/>
/// and answered as if the agent were here. An agent recorded on a server that stopped heartbeating (killed)
/// counts as not connected.
/// </remarks>
internal sealed class AgentHub(IMetadataStore store, RunService runs, IServerBus bus, TimeSpan activationTimeout, TimeSpan gracePeriod, TimeSpan serverGracePeriod, TimeProvider time, CancellationToken stopping)
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _absentSince = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, AgentSession> _agents = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, LocationReport> _lastReports = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _lastFailedMove = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _turns = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _scaledTo = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _rebalancing = new(1, 1);
    private readonly DateTimeOffset _startedAt = time.GetUtcNow();
    private TaskCompletionSource _agentConnected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Where agents coming and going, their reports, and failures of the hub's loops are logged.</summary>
    public ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>Where agents connected here, their capacity and load, and activations are counted.</summary>
    public ServerMetrics Metrics { get; init; } = ServerMetrics.Discard;

    /// <summary>
    /// The locations' environments (docs/env.md): each activation this hub sends on its own (an agent reconnecting, a
    /// location moving) carries its location's. Null: none.
    /// </summary>
    public LocationVariables? Variables { get; init; }

    /// <summary>The environment a location's processes get now (secrets opened), for a request to an agent.</summary>
    /// <exception cref="SecretKeyException">A secret does not open with this server's key.</exception>
    public async Task<IReadOnlyDictionary<string, string>?> EnvironmentOfAsync(string location, CancellationToken cancellationToken) =>
        Variables is null ? null : await Variables.EnvironmentAsync(location, cancellationToken).ConfigureAwait(false);

    /// <summary>Where the task calls of agents' runs go, and who has pools' agents run tasks (docs/tasks.md); null: calls are refused.</summary>
    public Tasks.TaskDispatcher? Tasks { get; set; }

    /// <summary>The session of an agent connected to this server, or null.</summary>
    public AgentSession? SessionOf(string agent) => _agents.GetValueOrDefault(agent);

    /// <summary>The last thing an agent reported about a location (crashed, restarted, unhealthy, …).</summary>
    public LocationReport? LastReport(string location) => _lastReports.GetValueOrDefault(location);

    public async Task ServeAsync(string name, int protocol, WebSocket socket, CancellationToken cancellationToken)
    {
        var session = new AgentSession(name, socket) { Protocol = protocol, OnReply = reply => runs.HandleReplyAsync(reply, stopping), Logger = Logger };
        session.OnMessage = message => HandleMessageAsync(session, message);
        if (_agents.TryRemove(name, out var previous))
        {
            previous.Closed.TrySetResult();
        }

        // Recorded before the session is usable, so a server asked for this agent a moment later finds it here.
        await store.AgentConnectedAsync(name, bus.ServerId, cancellationToken).ConfigureAwait(false);
        _agents[name] = session;
        Metrics.AgentsConnected(_agents.Count);
        _absentSince.TryRemove(name, out _);
        Log.AgentConnected(Logger, name);

        // Its hello (the first message) records what it is and starts catching it up (HelloAsync).
        var receiving = session.ReceiveLoopAsync(cancellationToken);
        try
        {
            await receiving.ConfigureAwait(false);
        }
        finally
        {
            Log.AgentDisconnected(Logger, name);
            await ForgetAsync(name, session).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Called as the server starts, and (with several servers) on every heartbeat: runs recorded as running
    /// belong to agents connected to no server; each gets the grace period to come back and resume them.
    /// </summary>
    public async Task WatchUnclaimedRunsAsync()
    {
        var running = await store.ListRunningRunsAsync(stopping).ConfigureAwait(false);
        foreach (var run in running.Where(r => r.Agent is null))
        {
            await runs.FailLostRunAsync(run, "the server restarted while this run was going and does not know which agent ran it", stopping).ConfigureAwait(false);
        }

        var connected = await ConnectedAgentsAsync(stopping).ConfigureAwait(false);
        foreach (var agent in running.Select(r => r.Agent).OfType<string>().Distinct(StringComparer.Ordinal).Where(a => !connected.ContainsKey(a)))
        {
            if (_absentSince.TryAdd(agent, time.GetUtcNow()))
            {
                _ = FailRunsIfAbsentAsync(agent, "was connected to no server");
            }
        }
    }

    private async Task ForgetAsync(string name, AgentSession session)
    {
        if (_agents.TryGetValue(name, out var current) && current == session)
        {
            _absentSince[name] = time.GetUtcNow();
            _ = FailRunsIfAbsentAsync(name, $"disconnected at {time.GetUtcNow():HH:mm:ss} UTC");
            _agents.TryRemove(name, out _);
            Metrics.AgentsConnected(_agents.Count);
            Metrics.AgentGone(name);
            try
            {
                // Its locations stay assigned to it: if it comes back (here or to another server) it keeps them;
                // a deploy meanwhile moves them to an agent that is connected.
                await store.AgentDisconnectedAsync(name, bus.ServerId, CancellationToken.None).ConfigureAwait(false);
            }
            catch (SkiffException)
            {
                // The store is away; this server's heartbeat decides for the others, and a later connect replaces the row.
            }
        }
    }

    /// <summary>
    /// The agents a pool's replicas count on (<see cref="Tasks.PoolScaler"/>): those connected, and for the grace period
    /// after this server started, those not heard of since (expected to reconnect: a restart moves nothing, as
    /// <see cref="Fleet.IsGone"/>). An agent that came and went since the start counts no more.
    /// </summary>
    public async Task<IReadOnlySet<string>> ServingAgentNamesAsync(CancellationToken cancellationToken)
    {
        var fleet = await FleetAsync(cancellationToken).ConfigureAwait(false);
        var expected = fleet.Now - _startedAt <= gracePeriod ? fleet.Profiles.Values.Where(p => p.SeenAt < _startedAt).Select(p => p.Name) : [];
        return fleet.Connected.Keys.Concat(expected).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// The agents gone past the grace period (<see cref="Fleet.IsGone"/>), each with why it counts as gone: a pool's drain
    /// on one of them has ended as far as a pinned call can tell, whether or not a server recorded it (the one that held the
    /// agent may have been killed, or restarted, before it gave up on it).
    /// </summary>
    public async Task<IReadOnlyDictionary<string, string>> GoneAgentsAsync(CancellationToken cancellationToken)
    {
        var fleet = await FleetAsync(cancellationToken).ConfigureAwait(false);
        return fleet.Profiles.Values.Where(p => fleet.IsGone(p.Name, gracePeriod)).ToDictionary(
            p => p.Name,
            p => $"agent '{p.Name}' was last seen at {p.SeenAt:HH:mm:ss} UTC, longer ago than the grace period ({gracePeriod.TotalSeconds:0} s)",
            StringComparer.Ordinal);
    }

    /// <summary>
    /// The agents connected to some live server, by name, with that server: the ones here, and those other
    /// servers recorded whose heartbeat is within the grace period.
    /// </summary>
    private async Task<Dictionary<string, string>> ConnectedAgentsAsync(CancellationToken cancellationToken)
    {
        var connected = new Dictionary<string, string>(StringComparer.Ordinal);
        var recorded = await store.ListAgentConnectionsAsync(cancellationToken).ConfigureAwait(false);
        if (recorded.Any(c => c.Server != bus.ServerId))
        {
            var now = time.GetUtcNow();
            var live = (await store.ListServersAsync(cancellationToken).ConfigureAwait(false))
                .Where(s => now - s.HeartbeatAt <= serverGracePeriod)
                .Select(s => s.Id)
                .ToHashSet(StringComparer.Ordinal);
            foreach (var connection in recorded.Where(c => c.Server != bus.ServerId && live.Contains(c.Server)))
            {
                connected[connection.Agent] = connection.Server;
            }
        }

        foreach (var name in _agents.Keys)
        {
            connected[name] = bus.ServerId;
        }

        return connected;
    }

    /// <summary>
    /// The agent a new run of a location goes to: one it is placed on that is connected, taking turns between
    /// replicas (draining agents last). A location placed nowhere (its agents were all replaced, or it predates
    /// placement) is placed now; the agent brings up the live release as the run starts. Waits up to
    /// <paramref name="wait"/> for a placed agent to (re)connect.
    /// </summary>
    public async Task<AgentLink> AgentForRunAsync(LocationRecord location, TimeSpan wait, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(wait);
        while (true)
        {
            // Taken before looking, so an agent connecting here in between is not missed.
            var connecting = Volatile.Read(ref _agentConnected).Task;
            var fleet = await FleetAsync(cancellationToken).ConfigureAwait(false);
            var placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
            var placed = placements.GetValueOrDefault(location.Name) ?? [];
            var usable = placed.Where(fleet.Connected.ContainsKey).ToList();
            if (usable.Count > 0)
            {
                // An agent stopping (its session draining) gets no new run here; an agent drained by an admin only when
                // no other can take it.
                usable = usable.Where(a => SessionOf(a) is not { IsDraining: true }).ToList() is { Count: > 0 } notStopping ? notStopping : usable;
                // Nor one still being caught up while another can take it: the run would wait for the agent to activate the
                // location on its own, alongside the catch-up's activations (from a cold cache, seconds).
                usable = usable.Where(a => !CatchingUp(a)).ToList() is { Count: > 0 } caughtUp ? caughtUp : usable;
                var ready = usable.Where(a => !fleet.IsDraining(a)).ToList() is { Count: > 0 } notDraining ? notDraining : usable;
                var turn = _turns.AddOrUpdate(location.Name, 0, (_, n) => n + 1);
                var chosen = ready[(int)((uint)turn % (uint)ready.Count)];
                return new AgentLink(chosen, fleet.Connected[chosen]);
            }

            if (placed.Count == 0)
            {
                // A pool scaled to zero gets one agent for a run of its own (its tasks place it through the scaler).
                var target = Choose(PlacementOf(location, 0, atLeast: 1), [], fleet, placements, keepAbsent: false);
                if (target.Count > 0)
                {
                    await store.ReplacePlacementAsync(location.Name, [], target, cancellationToken).ConfigureAwait(false);
                    continue;
                }
            }

            try
            {
                // An agent connecting to another server is only seen by looking again.
                await connecting.WaitAsync(bus.Backstop, time, deadline.Token).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new AgentUnavailableException(placed.Count == 0
                    ? Refusal(location.Name, PlacementOf(location, 0, atLeast: 1), fleet, [])
                    : $"no agent hosting '{location.Name}' is connected (it is placed on {string.Join(", ", placed)}); start one, or wait: after {gracePeriod.TotalSeconds:0} s away an agent's locations move to other agents.");
            }
        }
    }

    /// <summary>
    /// Makes a release live on a location's agents, placed as <paramref name="placement"/> asks: the agents it
    /// is on that still fit are kept, and the least loaded others that fit are added. Health-gated: the
    /// placement changes only when every one of them reports the release healthy; otherwise those that took it
    /// go back to <paramref name="previous"/> (or stop the location, if they did not run it before), and the
    /// reply names the agent that failed. Returns the first agent's <see cref="ActivatedReply"/>, or an
    /// <see cref="AgentErrorReply"/> saying why the release is not live. The agents get <paramref name="environment"/>,
    /// and those put back get <paramref name="previousEnvironment"/> with <paramref name="previous"/> (docs/env.md).
    /// </summary>
    public async Task<AgentMessage> ActivateAsync(
        string location,
        string release,
        string? memoryLimit,
        Placement placement,
        string? previous,
        IReadOnlyDictionary<string, string>? environment,
        IReadOnlyDictionary<string, string>? previousEnvironment,
        CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(10));
        while (true)
        {
            var connecting = Volatile.Read(ref _agentConnected).Task;
            var fleet = await FleetAsync(cancellationToken).ConfigureAwait(false);
            var placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
            var current = placements.GetValueOrDefault(location) ?? [];
            // A pool that scales is activated where it is now (on one agent at least: its health and tasks are learnt so).
            placement = placement.Sized(Math.Max(1, _scaledTo.GetValueOrDefault(location, current.Count)));
            var target = Choose(placement, current, fleet, placements, keepAbsent: false);
            // A pool that scales needs only its MIN (one at least) to go live: what its scaler asks for beyond that may be more
            // agents than there are, and the scaler places it on more as they come.
            var needed = placement.MinReplicas is { } min ? Math.Max(1, min) : placement.Replicas;
            if (target.Count < needed)
            {
                // Waiting helps only while an agent that could host it may still come: none is connected yet (right
                // after a start), or one that fits is away but not gone. Otherwise the deploy hears why at once.
                if (fleet.Connected.Count > 0 && !fleet.Profiles.Values.Any(p =>
                        !p.Draining && placement.Admits(p.Labels) && !fleet.Connected.ContainsKey(p.Name) && !fleet.IsGone(p.Name, gracePeriod)))
                {
                    throw new AgentUnavailableException(Refusal(location, placement.Sized(needed), fleet, target) + ScaledToZeroHint(placement));
                }

                try
                {
                    // Right after a start, agents may still be connecting.
                    await connecting.WaitAsync(bus.Backstop, time, deadline.Token).ConfigureAwait(false);
                    continue;
                }
                catch (TimeoutException)
                {
                    continue;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new AgentUnavailableException(Refusal(location, placement.Sized(needed), fleet, target) + ScaledToZeroHint(placement));
                }
            }

            var replies = await Task.WhenAll(target.Select(agent => ActivateOnAsync(new AgentLink(agent, fleet.Connected[agent]), location, release, memoryLimit, environment, cancellationToken))).ConfigureAwait(false);
            var outcomes = target.Zip(replies).ToList();
            if (outcomes.FirstOrDefault(o => !Succeeded(o.Second)) is ({ } failedAgent, { } failedReply))
            {
                foreach (var (agent, _) in outcomes.Where(o => Succeeded(o.Second)))
                {
                    await PutBackAsync(new AgentLink(agent, fleet.Connected[agent]), location, current.Contains(agent) ? previous : null, memoryLimit, previousEnvironment).ConfigureAwait(false);
                }

                var reason = Reason(failedReply);
                return new AgentErrorReply("activation_failed", target.Count == 1 ? reason : $"agent '{failedAgent}': {reason}");
            }

            if (!await store.ReplacePlacementAsync(location, current, target, cancellationToken).ConfigureAwait(false))
            {
                // Moved meanwhile (failover by another server): place again from what it is on now.
                continue;
            }

            foreach (var agent in current.Except(target, StringComparer.Ordinal).Where(fleet.Connected.ContainsKey))
            {
                await PutBackAsync(new AgentLink(agent, fleet.Connected[agent]), location, release: null, memoryLimit, environment: null).ConfigureAwait(false);
            }

            return replies[0];
        }
    }

    private async Task<AgentMessage> ActivateOnAsync(AgentLink agent, string location, string release, string? memoryLimit, IReadOnlyDictionary<string, string>? environment, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        AgentMessage reply;
        try
        {
            // The deployment's span, current here, is what the agent's activation span continues.
            var traceparent = Skiff.Sdk.Tracing.Traces.Traceparent(System.Diagnostics.Activity.Current);
            reply = await RequestAsync(agent, new ActivateRequest(location, release, memoryLimit, traceparent) { Environment = environment }, activationTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (AgentUnavailableException exception)
        {
            reply = new AgentErrorReply("unavailable", exception.Message);
        }

        Metrics.Activated(Succeeded(reply), time.GetElapsedTime(started));
        return reply;
    }

    private static bool Succeeded(AgentMessage reply) => reply is ActivatedReply { Succeeded: true };

    /// <summary>Why an activation did not succeed, as the agent said it.</summary>
    private static string Reason(AgentMessage reply) => reply switch
    {
        AgentErrorReply error => error.Message,
        ActivatedReply { Error: { } error } => error,
        _ => "it did not say why",
    };

    /// <summary>
    /// Puts an agent back as it was before a placement that did not happen, or off a location that moved: the
    /// release it ran before, or the location stopped. Best effort: an agent that does not answer is told when
    /// it next connects (it is not placed there).
    /// </summary>
    /// <summary>
    /// Takes a pool off an agent it was moved from once its worker there has settled the task it held (<see
    /// cref="Tasks.TaskDispatcher.RetireAsync"/>), unless the pool was placed there again meanwhile.
    /// </summary>
    private async Task TakeOffWhenSettledAsync(Task settling, AgentLink agent, string location, string? memoryLimit)
    {
        try
        {
            await settling.WaitAsync(stopping).ConfigureAwait(false);
            if (!((await store.ListPlacementsAsync(stopping).ConfigureAwait(false)).GetValueOrDefault(location) ?? []).Contains(agent.Name, StringComparer.Ordinal))
            {
                await PutBackAsync(agent, location, release: null, memoryLimit, environment: null).ConfigureAwait(false);
            }
        }
        catch (Exception exception) when ((exception is OperationCanceledException && stopping.IsCancellationRequested) || exception is SkiffException)
        {
            // The server stops, or the store is away: the agent is told what to hold when it is next caught up.
        }
    }

    private async Task PutBackAsync(AgentLink agent, string location, string? release, string? memoryLimit, IReadOnlyDictionary<string, string>? environment)
    {
        try
        {
            await RequestAsync(
                agent,
                release is null ? new DeactivateRequest(location) : new ActivateRequest(location, release, memoryLimit) { Environment = environment },
                activationTimeout,
                stopping).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is AgentUnavailableException or OperationCanceledException or SkiffException)
        {
        }
    }

    /// <summary>
    /// The agents a location should be on: those it is on that can still host it (connected, or with
    /// <paramref name="keepAbsent"/> away for less than the grace period; not draining; labels that fit), then
    /// the least loaded others that fit (fewest placed locations, then least memory in use, then by name), up
    /// to the replicas asked for, agents still being caught up (<see cref="CatchingUp"/>) only when those caught up
    /// are too few. Never moves a location for load alone.
    /// </summary>
    /// <remarks>
    /// An agent catching up is placed on only as a last resort, not refused: a deploy or a run still goes ahead when it
    /// is the only one that fits (it will serve once caught up, seconds at most). Where there is a choice, one caught up
    /// is taken even if busier, because an agent being caught up serves nothing of the location yet: a pool's worker
    /// starts there only once it is caught up (<see cref="Tasks.TaskDispatcher"/>), so a replica placed there counts
    /// toward the pool's size while taking no task; its catch-up activates its other locations one after another; and
    /// an agent back after the grace period still holds locations that moved off it, which its catch-up stops, racing a
    /// placement of the same location there. The window is short for a new agent (it has nothing to catch up on), so
    /// load spreads as before once it is caught up.
    /// </remarks>
    private List<string> Choose(Placement placement, IReadOnlyList<string> current, Fleet fleet, IReadOnlyDictionary<string, IReadOnlyList<string>> placements, bool keepAbsent)
    {
        var fits = fleet.Profiles.Values.Where(p => !p.Draining && placement.Admits(p.Labels)).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var placedCount = placements.Values.SelectMany(agents => agents).GroupBy(a => a, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var keep = current.Where(a => fits.Contains(a) && (fleet.Connected.ContainsKey(a) || (keepAbsent && !fleet.IsGone(a, gracePeriod))))
            .OrderBy(a => placedCount.GetValueOrDefault(a))
            .ThenBy(a => a, StringComparer.Ordinal)
            .Take(placement.Replicas)
            .ToList();
        var add = fits.Where(a => fleet.Connected.ContainsKey(a) && !keep.Contains(a))
            .OrderBy(CatchingUp)
            .ThenBy(a => placedCount.GetValueOrDefault(a))
            .ThenBy(fleet.MemoryInUse)
            .ThenBy(a => a, StringComparer.Ordinal)
            .Take(placement.Replicas - keep.Count);
        return [.. keep.Concat(add).Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// Whether an agent connected here has not been caught up on this connection yet (<see cref="AgentSession.IsCaughtUp"/>).
    /// One connected to another server counts as caught up: only the server holding its connection knows.
    /// </summary>
    private bool CatchingUp(string agent) => SessionOf(agent) is { IsCaughtUp: false };

    /// <summary>
    /// What to do when a deploy of a pool that scales to zero finds no agent: its Deployment under KEDA is at zero, so no
    /// agent runs, yet the deploy needs one, as the release's health and tasks are learnt from an activation.
    /// </summary>
    private static string ScaledToZeroHint(Placement placement) => placement.MinReplicas == 0
        ? " A pool that scales to zero (--replicas 0..N) still needs one such agent connected while it is deployed: its release's health and tasks are learnt from an activation. Start one (for a pool's Deployment that KEDA scales, `kubectl scale deployment NAME --replicas=1`) and deploy again; the pool goes back to zero once idle."
        : "";

    /// <summary>Why a location cannot be placed, naming the constraint and every agent checked.</summary>
    private static string Refusal(string location, Placement placement, Fleet fleet, IReadOnlyList<string> usable)
    {
        if (fleet.Profiles.Count == 0)
        {
            return $"no agent is connected to host '{location}'. Start one with `skiff agent --server URL` (or use `skiff up`, which runs one).";
        }

        var needs = placement.Replicas == 1 ? "an agent" : $"{placement.Replicas} agents";
        var found = usable.Count == 0 ? "none can host it" : $"only {string.Join(", ", usable)} can";
        var checkedAgents = fleet.Profiles.Values.Select(p => $"{p.Name} ({Why(p)})");
        return $"'{location}' needs {needs} with {placement.Describe()}, and {found}; checked {string.Join("; ", checkedAgents)}.";

        string Why(AgentProfile profile) =>
            !fleet.Connected.ContainsKey(profile.Name) ? "not connected"
            : profile.Draining ? "draining"
            : placement.Admits(profile.Labels) ? "fits"
            : placement.Mismatch(profile.Labels);
    }

    /// <summary>Where a location is to be placed now: a pool that scales on what the scaler last decided, else on <paramref name="placed"/>, kept between its fewest and most.</summary>
    private Placement PlacementOf(LocationRecord location, int placed, int atLeast = 0) =>
        Placement.FromStored(location.Replicas, location.Constraints, location.MinReplicas).Sized(Math.Max(atLeast, _scaledTo.GetValueOrDefault(location.Name, placed)));

    /// <summary>
    /// Why no connected agent can take <paramref name="location"/> now (its placement's labels and replicas, and every agent
    /// checked), for a pool that scales, has work and is on no connected agent (<see cref="Tasks.PoolScaler"/>); null when
    /// one can, which the next rebalance places it on.
    /// </summary>
    public async Task<string?> UnplaceableAsync(string location, CancellationToken cancellationToken)
    {
        if (await store.GetLocationAsync(location, cancellationToken).ConfigureAwait(false) is not { } record)
        {
            return null;
        }

        var fleet = await FleetAsync(cancellationToken).ConfigureAwait(false);
        var placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
        var placement = PlacementOf(record, 0, atLeast: 1);
        var target = Choose(placement, [], fleet, placements, keepAbsent: false);
        return target.Count > 0 ? null : Refusal(location, placement, fleet, target);
    }

    /// <summary>
    /// A pool that scales is to be placed on <paramref name="replicas"/> agents (<see cref="Tasks.PoolScaler"/>): more are
    /// added by the next rebalance; fewer are removed by <see cref="ScaleDownAsync"/>.
    /// </summary>
    public void ScaleTo(string location, int replicas) => _scaledTo[location] = replicas;

    /// <summary>
    /// The runs of <paramref name="location"/> that have not ended, by the agent running each (null: queued): those recorded,
    /// and those this server is starting on an agent connected here, recorded once the agent answers. A pool that scales
    /// is busy while it has one, and is not taken off an agent running one (docs/tasks.md, "Scaling a pool").
    /// </summary>
    public async Task<IReadOnlyList<ActiveRuns>> ActiveRunsAsync(string location, CancellationToken cancellationToken) =>
        [
            .. await store.CountActiveRunsAsync(location, cancellationToken).ConfigureAwait(false),
            .. runs.StartingOn(location).GroupBy(agent => agent, StringComparer.Ordinal).Select(g => new ActiveRuns(g.Key, g.Count())),
        ];

    /// <summary>
    /// Takes a pool that scales off agents until it is on <paramref name="replicas"/>, one agent at a time and only where
    /// its worker holds no task (<see cref="Tasks.TaskDispatcher.TryRetire"/>) and no run of it is running or starting
    /// (<see cref="ActiveRunsAsync"/>): the placement is removed first, so no new worker or run starts there, and put back
    /// when the agent turns out busy. The agents it left are told to stop it. Returns how many agents it is on after.
    /// </summary>
    public async Task<int> ScaleDownAsync(string location, int replicas, CancellationToken cancellationToken)
    {
        await _rebalancing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var fleet = await FleetAsync(cancellationToken).ConfigureAwait(false);
            var placed = (await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false)).GetValueOrDefault(location) ?? [];
            // Agents away first (nothing of theirs runs here), then the most loaded.
            foreach (var agent in placed.OrderBy(a => fleet.Connected.ContainsKey(a)).ThenByDescending(fleet.MemoryInUse).ThenBy(a => a, StringComparer.Ordinal).ToList())
            {
                if (placed.Count <= replicas)
                {
                    break;
                }

                if (fleet.Connected.TryGetValue(agent, out var through) && through != bus.ServerId)
                {
                    // Only the server an agent is connected to knows whether its worker holds a task; every server scales,
                    // so that one takes it down when it may.
                    continue;
                }

                var next = placed.Where(a => a != agent).ToList();
                if (!await store.ReplacePlacementAsync(location, placed, next, cancellationToken).ConfigureAwait(false))
                {
                    // Moved meanwhile: the next pass looks again.
                    break;
                }

                // Looked at once its placement is gone: a run started later goes to another agent, or places the pool afresh.
                if (fleet.Connected.ContainsKey(agent)
                    && (await ActiveRunsAsync(location, cancellationToken).ConfigureAwait(false)).Any(r => r.Agent == agent))
                {
                    // A run of the pool's own jobs runs there (or is starting): stopping the location would refuse or strand it.
                    await store.ReplacePlacementAsync(location, next, placed, CancellationToken.None).ConfigureAwait(false);
                    continue;
                }

                if (Tasks is { } tasks && !tasks.TryRetire(location, agent))
                {
                    // Its worker holds a task: it stays, and the pool is smaller at a later pass.
                    await store.ReplacePlacementAsync(location, next, placed, CancellationToken.None).ConfigureAwait(false);
                    continue;
                }

                placed = next;
                Log.PoolScaledDown(Logger, location, agent, placed.Count);
                if (fleet.Connected.TryGetValue(agent, out var server))
                {
                    await PutBackAsync(new AgentLink(agent, server), location, release: null, memoryLimit: null, environment: null).ConfigureAwait(false);
                }
            }

            return placed.Count;
        }
        finally
        {
            _rebalancing.Release();
        }
    }

    /// <summary>How to reach a named agent now (a run's, to cancel it).</summary>
    public async Task<AgentLink> LinkAsync(string agent, CancellationToken cancellationToken) =>
        (await ConnectedAgentsAsync(cancellationToken).ConfigureAwait(false)).TryGetValue(agent, out var server)
            ? new AgentLink(agent, server)
            : throw new AgentUnavailableException($"agent '{agent}', which runs this run, is not connected; try again once it is back (after {gracePeriod.TotalSeconds:0} s away its runs are failed).");

    /// <summary>Sends a request to an agent, here or through the server holding it, and returns its reply.</summary>
    public Task<AgentMessage> RequestAsync(AgentLink agent, AgentMessage message, TimeSpan timeout, CancellationToken cancellationToken) =>
        RelayAsync(agent, message, runStartedAt: null, timeout, cancellationToken);

    /// <summary>
    /// Sends a <c>start_run</c> to an agent. The run is recorded (running, on that agent, started at
    /// <paramref name="startedAt"/>) by the server holding the agent, as it reads the agent's answer and before
    /// any event of the run: a run the agent refuses is never recorded.
    /// </summary>
    public Task<AgentMessage> StartRunAsync(AgentLink agent, StartRunRequest startRun, DateTimeOffset startedAt, TimeSpan timeout, CancellationToken cancellationToken) =>
        RelayAsync(agent, startRun, startedAt, timeout, cancellationToken);

    private async Task<AgentMessage> RelayAsync(AgentLink agent, AgentMessage message, DateTimeOffset? runStartedAt, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (agent.Server == bus.ServerId)
        {
            return await LocalRequestAsync(agent.Name, message, runStartedAt, timeout, cancellationToken).ConfigureAwait(false);
        }

        var json = JsonSerializer.SerializeToNode(message, AgentJson.Wire.AgentMessage)!.AsObject();
        var request = new JsonObject
        {
            ["agent"] = agent.Name,
            ["message"] = json,
            ["timeout_ms"] = (long)timeout.TotalMilliseconds,
            ["run_started_at"] = runStartedAt?.ToString("O"),
        };

        // The bus keeps requests in a table until they are answered: a location's environment, secrets included, goes
        // there sealed with the key every server shares (docs/env.md), never in plain text. An empty one is left as it
        // is: servers of a platform that sets no variables need no shared key, as before environments existed.
        if (json["environment"] is JsonObject { Count: > 0 } && json.Remove("environment", out var environment))
        {
            request["environment_sealed"] = (Variables ?? throw new AgentUnavailableException("this server has no secrets key to pass a location's environment to another server."))
                .SealForServers(agent.Name, environment!.ToJsonString());
        }

        // A little longer than the agent gets, so the holding server's own timeout (with its message) comes first.
        var reply = await bus.RequestAsync(agent.Server, request, timeout + TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        return Relayed(reply, $"reply of agent '{agent.Name}' from server '{agent.Server}'");
    }

    /// <summary>A message passed between servers in a bus envelope (as JSON, the way the agent sent it or is sent it).</summary>
    private static AgentMessage Relayed(JsonObject? json, string what) =>
        (json is null ? null : JsonMessages.Read(Encoding.UTF8.GetBytes(json.ToJsonString()))) switch
        {
            null => throw new AgentUnavailableException($"a relayed {what} carried no message."),
            UnreadableMessage unreadable => throw new AgentUnavailableException($"a relayed {what} could not be read: {unreadable.Problem}"),
            var message => message,
        };

    /// <summary>A request another server passed here for an agent connected to this one: the bus's <see cref="IServerBus.OnRequest"/>.</summary>
    public async Task<JsonObject> HandleRelayedAsync(JsonObject request, CancellationToken cancellationToken)
    {
        var agent = (string?)request["agent"] ?? throw new AgentUnavailableException("a relayed request named no agent.");
        if ((string?)request["environment_sealed"] is { } sealedEnvironment && request["message"] is JsonObject message)
        {
            message["environment"] = JsonNode.Parse((Variables ?? throw new AgentUnavailableException("this server has no secrets key to open the location environment another server passed."))
                .OpenFromServer(agent, sealedEnvironment));
        }

        var reply = await LocalRequestAsync(
            agent,
            Relayed(request["message"] as JsonObject, "request"),
            (string?)request["run_started_at"] is { } at ? DateTimeOffset.Parse(at, System.Globalization.CultureInfo.InvariantCulture) : null,
            TimeSpan.FromMilliseconds((long?)request["timeout_ms"] ?? (long)activationTimeout.TotalMilliseconds),
            cancellationToken).ConfigureAwait(false);
        return JsonSerializer.SerializeToNode(reply, AgentJson.Wire.AgentMessage)!.AsObject();
    }

    private async Task<AgentMessage> LocalRequestAsync(string name, AgentMessage message, DateTimeOffset? runStartedAt, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!_agents.TryGetValue(name, out var session))
        {
            throw new AgentUnavailableException($"agent '{name}' disconnected from server '{bus.ServerId}'; try again once it has reconnected.");
        }

        var start = runStartedAt is null ? null : message as StartRunRequest;
        var runId = start?.Run;
        if (start is not null)
        {
            runs.Starting(new RunRecord(
                start.Run,
                start.Location,
                Digest.Parse(start.Release),
                start.Job,
                (start.Params ?? []).ToJsonString(),
                RunStatuses.Running,
                runStartedAt!.Value,
                null,
                null,
                name));
        }

        try
        {
            var reply = await session.RequestAsync(message, timeout, cancellationToken).ConfigureAwait(false);
            if (runId is not null && reply is AgentErrorReply)
            {
                runs.StartFailed(runId);
            }

            return reply;
        }
        catch
        {
            if (runId is not null)
            {
                runs.StartFailed(runId);
            }

            throw;
        }
    }

    /// <summary>After the grace period, fails the runs of an agent that has not come back.</summary>
    private async Task FailRunsIfAbsentAsync(string agent, string what)
    {
        try
        {
            while (true)
            {
                if (!_absentSince.TryGetValue(agent, out var since))
                {
                    return; // Back.
                }

                // Measured from when it went away (it may have come and gone again meanwhile); timers may fire a
                // little early, so wait out whatever is left rather than trust one delay.
                var left = gracePeriod - (time.GetUtcNow() - since);
                if (left <= TimeSpan.Zero)
                {
                    break;
                }

                await Task.Delay(left, time, stopping).ConfigureAwait(false);
            }

            if (!_agents.ContainsKey(agent) && (await ConnectedAgentsAsync(stopping).ConfigureAwait(false)).ContainsKey(agent))
            {
                // It came back through another server, which resumes its runs.
                _absentSince.TryRemove(agent, out _);
                return;
            }

            foreach (var run in await store.ListRunningRunsAsync(stopping).ConfigureAwait(false))
            {
                if (run.Agent == agent)
                {
                    await runs.FailLostRunAsync(run, $"agent '{agent}', which ran this run, {what} and did not come back within {gracePeriod.TotalSeconds:0} s; what the run did after that is unknown", stopping).ConfigureAwait(false);
                }
            }

            // Its drains too: left "draining", calls pinned to them would be taken and then dead-lettered for want of an agent
            // running the release (docs/tasks.md, "Pins"). Every server giving up on it gets here; the store appends once.
            await EndDrainsAsync(agent, new Dictionary<string, IReadOnlyList<string>>(), $"no longer draining: agent '{agent}' {what} and did not come back within {gracePeriod.TotalSeconds:0} s, so the server gave up on it and on its drains", stopping).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is OperationCanceledException or ObjectDisposedException or SkiffException)
        {
            // The server is stopping (the next start watches these runs again), or the store is away (the next
            // heartbeat's watch, with several servers, looks again).
        }
        catch (Exception exception)
        {
            // Nothing awaits this task: what went wrong would vanish unlogged.
            Log.LostRunsFailed(Logger, exception, agent);
        }
    }

    private async Task CatchUpAsync(AgentSession session, AgentHello hello, CancellationToken cancellationToken)
    {
        try
        {
            try
            {
                await ResumeRunsAsync(session, cancellationToken).ConfigureAwait(false);
                await ReconcileAsync(session, hello, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // Its pools' workers may start now (a failed catch-up takes tasks as before, rather than none).
                session.IsCaughtUp = true;
            }

            // A new agent may be what a location short of replicas (or placed nowhere) was waiting for.
            await RebalanceAsync(onlyAgent: null, cancellationToken).ConfigureAwait(false);
            if (Tasks is { } tasks)
            {
                // Tasks of its pools may have been queued while it was away.
                await tasks.AgentConnectedAsync(session.Name, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception exception) when (exception is AgentUnavailableException or OperationCanceledException or ObjectDisposedException or SkiffException)
        {
            // The agent went away again (or the server is stopping, or the store is away); its next connection catches up.
        }
        catch (Exception exception)
        {
            Log.AgentCatchUpFailed(Logger, exception, session.Name);
        }
    }

    /// <summary>
    /// Tells the agent the last event stored for each of its running runs. It resends what follows (on the
    /// same connection, so before its answer is read) and names the runs it no longer has, which are failed.
    /// </summary>
    private async Task ResumeRunsAsync(AgentSession session, CancellationToken cancellationToken)
    {
        var held = (await store.ListRunningRunsAsync(cancellationToken).ConfigureAwait(false))
            .Where(r => r.Agent == session.Name)
            .ToList();
        var reply = await session.RequestAsync(
            new ResumeRunsRequest(held.ToDictionary(r => r.Id, r => r.LastSeq, StringComparer.Ordinal)),
            activationTimeout,
            cancellationToken).ConfigureAwait(false);
        var unknown = (reply as ResumedReply)?.Unknown.ToHashSet(StringComparer.Ordinal) ?? [];
        foreach (var run in held.Where(r => unknown.Contains(r.Id)))
        {
            await runs.FailLostRunAsync(run, $"agent '{session.Name}' restarted while this run was going, and its process ended with it", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Brings a (re)connected agent in line with the store: the live release of every location placed on it,
    /// and a stop for every location it runs that is placed elsewhere now (moved while it was away). Nothing
    /// moves because an agent or server restarted: locations move only off an agent gone past the grace period.
    /// </summary>
    private async Task ReconcileAsync(AgentSession session, AgentHello hello, CancellationToken cancellationToken)
    {
        var placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
        bool PlacedHere(string location) => placements.GetValueOrDefault(location)?.Contains(session.Name) == true;
        var locations = await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var pool in locations.Where(l => l is { MinReplicas: not null, LiveRelease: not null } && !PlacedHere(l.Name)
            && hello.Locations.Any(h => h.Location == l.Name) && Api.Json.Tasks(l.TasksJson).Count > 0))
        {
            // A pool that scales, taken off this agent while it was away (its replicas count on connected agents only), is
            // placed here again rather than stopped: the agent may still run a task of it handed out before it went away,
            // which no worker here knows of, and a stop would cut that task off. Its scaler takes the replica down again
            // once the pool is idle, as any other. Not past the pool's most, nor onto an agent drained or that no longer fits.
            var placed = placements.GetValueOrDefault(pool.Name) ?? [];
            if (placed.Count < pool.Replicas && Placement.FromStored(pool.Replicas, pool.Constraints).Admits(hello.Labels)
                && !(await store.ListAgentProfilesAsync(cancellationToken).ConfigureAwait(false)).Any(p => p.Name == session.Name && p.Draining)
                && await store.ReplacePlacementAsync(pool.Name, placed, [.. placed, session.Name], cancellationToken).ConfigureAwait(false))
            {
                placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var location in locations)
        {
            if (location.LiveRelease is { } release && PlacedHere(location.Name))
            {
                IReadOnlyDictionary<string, string>? environment;
                try
                {
                    environment = await EnvironmentOfAsync(location.Name, cancellationToken).ConfigureAwait(false);
                }
                catch (SecretKeyException exception)
                {
                    // One location whose secrets this server cannot open must not keep the agent's other locations
                    // from starting; this one stays down, and says why here and on its next deploy or run.
                    Log.ReconnectActivationSkipped(Logger, location.Name, session.Name, exception.Message);
                    continue;
                }

                var started = time.GetTimestamp();
                var reply = await session.RequestAsync(new ActivateRequest(location.Name, release.ToString(), location.MemoryLimit) { Environment = environment }, activationTimeout, cancellationToken).ConfigureAwait(false);
                Metrics.Activated(Succeeded(reply), time.GetElapsedTime(started));
            }
        }

        foreach (var held in hello.Locations.Select(l => l.Location))
        {
            if (!PlacedHere(held))
            {
                // Read again right before the stop: a rebalance (a pool scaling up) may have placed it here since.
                placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
            }

            if (!PlacedHere(held))
            {
                await session.RequestAsync(new DeactivateRequest(held), activationTimeout, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Watches the fleet until the server stops: every few seconds, locations on agents gone past the grace
    /// period, on draining agents, or short of their replicas are placed on agents that can host them.
    /// </summary>
    public async Task WatchFleetAsync()
    {
        var interval = TimeSpan.FromTicks(Math.Min(gracePeriod.Ticks / 4, TimeSpan.FromSeconds(2.5).Ticks));
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, time, stopping).ConfigureAwait(false);
                await RebalanceAsync(onlyAgent: null, stopping).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SkiffException)
            {
                // The store is away (PostgreSQL restarting): look again at the next interval.
            }
            catch (Exception exception)
            {
                // A bug in one pass must not end the watch for the server's life.
                Log.FleetWatchFailed(Logger, exception, interval);
            }
        }
    }

    /// <summary>
    /// Moves locations to where they should be: off agents gone past the grace period and off draining agents,
    /// and onto more agents where they are short of replicas. Health-gated like a deploy: a location's placement
    /// changes only to agents that report its live release healthy, and the agents it left are told to stop it.
    /// Locations with a deployment pending are left to it. With <paramref name="onlyAgent"/>, only the
    /// locations on that agent are looked at, and each that cannot move says why.
    /// </summary>
    public async Task<IReadOnlyList<LocationMove>> RebalanceAsync(string? onlyAgent, CancellationToken cancellationToken)
    {
        await _rebalancing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var fleet = await FleetAsync(cancellationToken).ConfigureAwait(false);
            var placements = new Dictionary<string, IReadOnlyList<string>>(await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false), StringComparer.Ordinal);
            var pending = (await store.ListPendingDeploymentsAsync(cancellationToken).ConfigureAwait(false)).Select(d => d.Location).ToHashSet(StringComparer.Ordinal);
            var moves = new List<LocationMove>();
            foreach (var location in await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false))
            {
                var current = placements.GetValueOrDefault(location.Name) ?? [];
                if (location.LiveRelease is not { } release || pending.Contains(location.Name) || (onlyAgent is not null && !current.Contains(onlyAgent)))
                {
                    continue;
                }

                var placement = PlacementOf(location, current.Count);
                var target = Choose(placement, current, fleet, placements, keepAbsent: true);
                var added = target.Except(current, StringComparer.Ordinal).ToList();
                if (added.Count == 0)
                {
                    if (onlyAgent is not null)
                    {
                        moves.Add(new LocationMove(location.Name, current, current, Refusal(location.Name, placement, fleet, target)));
                    }

                    continue;
                }

                if (onlyAgent is null && _lastFailedMove.TryGetValue(location.Name, out var failedAt) && time.GetUtcNow() - failedAt < activationTimeout)
                {
                    // Tried a moment ago and the agents refused: not again on every tick.
                    continue;
                }

                var environment = await EnvironmentOfAsync(location.Name, cancellationToken).ConfigureAwait(false);
                var replies = await Task.WhenAll(added.Select(a => ActivateOnAsync(new AgentLink(a, fleet.Connected[a]), location.Name, release.ToString(), location.MemoryLimit, environment, cancellationToken))).ConfigureAwait(false);
                var refused = added.Zip(replies).Where(r => !Succeeded(r.Second)).ToList();
                var error = refused.Count == 0 ? null : string.Join("; ", refused.Select(r => $"agent '{r.First}': {Reason(r.Second)}"));
                var next = target.Except(refused.Select(r => r.First), StringComparer.Ordinal).ToList();
                if (refused.Count > 0)
                {
                    _lastFailedMove[location.Name] = time.GetUtcNow();
                }

                if (refused.Count == added.Count)
                {
                    moves.Add(new LocationMove(location.Name, current, current, error));
                    continue;
                }

                if (!await store.ReplacePlacementAsync(location.Name, current, next, cancellationToken).ConfigureAwait(false))
                {
                    // Another server moved it first, often to the same agents: only those it did not choose are undone.
                    var winner = (await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false)).GetValueOrDefault(location.Name) ?? [];
                    placements[location.Name] = winner;
                    foreach (var agent in added.Except(refused.Select(r => r.First), StringComparer.Ordinal).Except(winner, StringComparer.Ordinal))
                    {
                        await PutBackAsync(new AgentLink(agent, fleet.Connected[agent]), location.Name, release: null, location.MemoryLimit, environment: null).ConfigureAwait(false);
                    }

                    continue;
                }

                placements[location.Name] = next;
                foreach (var agent in current.Except(next, StringComparer.Ordinal).Where(fleet.Connected.ContainsKey))
                {
                    var link = new AgentLink(agent, fleet.Connected[agent]);
                    if (Tasks?.RetireAsync(location.Name, agent) is { IsCompleted: false } settling)
                    {
                        // A pool whose worker there holds a task: taken off the agent once that task is settled, not under it.
                        _ = TakeOffWhenSettledAsync(settling, link, location.Name, location.MemoryLimit);
                        continue;
                    }

                    await PutBackAsync(link, location.Name, release: null, location.MemoryLimit, environment: null).ConfigureAwait(false);
                }

                moves.Add(new LocationMove(location.Name, current, next, error));
            }

            return moves;
        }
        finally
        {
            _rebalancing.Release();
        }
    }

    /// <summary>
    /// Drains an agent: marks it draining (no new locations or runs), moves each of its locations to other agents
    /// that report it healthy, and tells it to stop them; its runs go on to their end. When a location cannot
    /// move, the agent is left undrained, keeping it (locations that already moved stay moved), and the error names
    /// the location and why.
    /// </summary>
    public async Task<IReadOnlyList<LocationMove>> DrainAsync(string agent, CancellationToken cancellationToken)
    {
        var before = (await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false)).Where(p => p.Value.Contains(agent)).ToList();
        if (!await store.SetAgentDrainingAsync(agent, true, cancellationToken).ConfigureAwait(false))
        {
            throw new AgentNotFoundException($"there is no agent '{agent}'; `skiff agents` lists them.");
        }

        // Any server's fleet watch may make some of these moves first (they all see the agent draining now), so
        // what happened is read back from the store rather than taken from this server's own rebalance.
        var errors = (await RebalanceAsync(agent, cancellationToken).ConfigureAwait(false)).Where(m => m.Error is not null).ToDictionary(m => m.Location, m => m.Error, StringComparer.Ordinal);
        var after = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
        var moves = before.Select(p => new LocationMove(p.Key, p.Value, after.GetValueOrDefault(p.Key) ?? [], errors.GetValueOrDefault(p.Key))).ToList();
        if (moves.FirstOrDefault(m => m.To.Contains(agent)) is { } stuck)
        {
            await store.SetAgentDrainingAsync(agent, false, CancellationToken.None).ConfigureAwait(false);
            throw new PlacementException($"agent '{agent}' was not drained: '{stuck.Location}' cannot move off it: {stuck.Error ?? "another server is moving it; try again"} Locations already moved stay where they went.");
        }

        return moves;
    }

    /// <summary>Takes an agent out of draining: it gets locations and runs again.</summary>
    public async Task UndrainAsync(string agent, CancellationToken cancellationToken)
    {
        if (!await store.SetAgentDrainingAsync(agent, false, cancellationToken).ConfigureAwait(false))
        {
            throw new AgentNotFoundException($"there is no agent '{agent}'; `skiff agents` lists them.");
        }

        await RebalanceAsync(onlyAgent: null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Every agent the store knows: connected or not (and through which server), labels, capacity, last load,
    /// the locations placed on it, its running runs, the pools' tasks it runs now (counted by the server it is
    /// connected to), and its state: <c>ready</c>, <c>draining</c> (runs or
    /// locations left), <c>drained</c>, <c>away</c> (within the grace period) or <c>gone</c>.
    /// </summary>
    /// <param name="shown">Which locations the caller may see; the others are left out of each agent's list.</param>
    /// <param name="cancellationToken">Stops the reads.</param>
    public async Task<JsonArray> DescribeAgentsAsync(Func<string, bool> shown, CancellationToken cancellationToken)
    {
        var fleet = await FleetAsync(cancellationToken).ConfigureAwait(false);
        var placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
        var running = (await store.ListRunningRunsAsync(cancellationToken).ConfigureAwait(false))
            .Where(r => r.Agent is not null)
            .GroupBy(r => r.Agent!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var agents = new JsonArray();
        foreach (var profile in fleet.Profiles.Values.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            var locations = placements.Where(p => p.Value.Contains(profile.Name)).Select(p => p.Key).Order(StringComparer.Ordinal).ToList();
            var visible = locations.Where(shown).ToList();
            var runsHere = running.GetValueOrDefault(profile.Name);
            var connected = fleet.Connected.TryGetValue(profile.Name, out var server);
            agents.Add(new JsonObject
            {
                ["name"] = profile.Name,
                ["state"] = profile.Draining
                    ? (locations.Count > 0 || runsHere > 0 ? "draining" : "drained")
                    : connected ? "ready"
                    : fleet.IsGone(profile.Name, gracePeriod) ? "gone" : "away",
                ["connected"] = connected,
                ["server"] = server,
                ["labels"] = new JsonObject([.. profile.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))]),
                ["capacity"] = JsonNode.Parse(profile.CapacityJson),
                ["load"] = profile.LoadJson is null ? null : JsonNode.Parse(profile.LoadJson),
                ["locations"] = new JsonArray([.. visible.Select(l => (JsonNode)l)]),
                ["runs"] = runsHere,
                ["tasks"] = Tasks?.TasksRunningOn(profile.Name) ?? 0,
                ["seen_at"] = profile.SeenAt.ToString("O"),
            });
        }

        return agents;
    }

    /// <summary>Which agents are connected to a live server, and what every known agent said of itself.</summary>
    private async Task<Fleet> FleetAsync(CancellationToken cancellationToken)
    {
        var connected = await ConnectedAgentsAsync(cancellationToken).ConfigureAwait(false);
        var profiles = await store.ListAgentProfilesAsync(cancellationToken).ConfigureAwait(false);
        return new Fleet(connected, profiles.ToDictionary(p => p.Name, StringComparer.Ordinal), time.GetUtcNow(), _startedAt);
    }

    private sealed record Fleet(IReadOnlyDictionary<string, string> Connected, IReadOnlyDictionary<string, AgentProfile> Profiles, DateTimeOffset Now, DateTimeOffset WatchingSince)
    {
        public bool IsDraining(string agent) => Profiles.TryGetValue(agent, out var profile) && profile.Draining;

        /// <summary>
        /// Away for longer than the grace period: not connected, and last heard of that long ago. Counted from when
        /// this server started at the earliest, so a restart of the whole platform moves nothing.
        /// </summary>
        public bool IsGone(string agent, TimeSpan grace)
        {
            if (Connected.ContainsKey(agent))
            {
                return false;
            }

            var seen = Profiles.TryGetValue(agent, out var profile) ? profile.SeenAt : DateTimeOffset.MinValue;
            return Now - (seen > WatchingSince ? seen : WatchingSince) > grace;
        }

        public long MemoryInUse(string agent) =>
            Profiles.TryGetValue(agent, out var profile) && profile.LoadJson is { } load && JsonNode.Parse(load)?["memory_used_bytes"] is JsonValue used && used.TryGetValue<long>(out var bytes)
                ? bytes
                : 0;
    }

    /// <summary>
    /// An agent's unprompted messages. Anything else (an unknown type, a reply nobody waits for any more) is let go:
    /// nothing waits for an answer to it, and the agent's next message may be fine.
    /// </summary>
    private async Task HandleMessageAsync(AgentSession session, AgentMessage message)
    {
        switch (message)
        {
            case AgentRunEvents batch:
                // Queued in order for the writer's next batches; once the run's end is committed, the agent may forget its events.
                foreach (var runEvent in batch.Events)
                {
                    await runs.AppendEventAsync(batch.Run, runEvent, runEvent.IsEnd ? () => session.TrySendAsync(new RunStoredNotice(batch.Run)) : null, stopping).ConfigureAwait(false);
                }

                break;
            case AgentRunEvent runEvent:
                // From an agent of protocol 2, one event a message.
                await runs.AppendEventAsync(runEvent.Run, runEvent.Event, () => session.TrySendAsync(new RunStoredNotice(runEvent.Run)), stopping).ConfigureAwait(false);
                break;
            case AgentCallTask call when Tasks is { } tasks:
                await tasks.CallAsync(session.Name, call).ConfigureAwait(false);
                break;
            case AgentDraining:
                Log.AgentDraining(Logger, session.Name);
                session.Drain();
                break;
            case AgentCancelCall cancel when Tasks is { } tasks:
                await tasks.CancelAsync(cancel).ConfigureAwait(false);
                break;
            case AgentTaskDone done when Tasks is { } tasks:
                // Unprompted (or answering a request nobody waits for any more): an outcome the agent kept, to be recorded.
                await tasks.FinishedAsync(session, done).ConfigureAwait(false);
                break;
            case AgentTaskEvents taskEvents when Tasks is { } tasks:
                // Awaited: a caller's agent slow to take them holds up this agent's messages, not the server's memory.
                await tasks.RelayEventsAsync(session.Name, taskEvents).ConfigureAwait(false);
                break;
            case AgentCallTask call:
                await session.TrySendAsync(new AgentTaskResult(call.Call, new JsonObject { ["succeeded"] = false, ["error"] = new JsonObject { ["type"] = "", ["message"] = "this server carries no task calls" } }, "refused")).ConfigureAwait(false);
                break;
            case LocationReport report:
                _lastReports[report.Location] = report;
                await KeepReportAsync(session.Name, report).ConfigureAwait(false);
                break;
            case AgentHello hello:
                await HelloAsync(session, hello).ConfigureAwait(false);
                break;
            case AgentLoad load:
                Metrics.AgentLoad(session.Name, load);
                await store.RecordAgentLoadAsync(session.Name, JsonSerializer.Serialize(load, AgentJson.Wire.AgentLoad), CancellationToken.None).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Logs an agent's report and appends it to the location's health history in the store.</summary>
    private async Task KeepReportAsync(string agent, LocationReport report)
    {
        var level = report.Kind is "Crashed" or "Unhealthy" or "OutOfMemory" or "ActivationFailed" or "RunHostDied" ? LogLevel.Warning : LogLevel.Information;
        Log.LocationReported(Logger, level, agent, report.Location, report.Release, report.Kind, report.Message);
        try
        {
            await store.AppendLocationHealthAsync(
                new LocationHealthRecord(report.Location, agent, report.Release, report.Kind, report.Message, report.At),
                CancellationToken.None).ConfigureAwait(false);
        }
        catch (SkiffException exception)
        {
            // The store is away: the report is in the log and in memory (GET /locations), only the history misses it.
            Log.HealthNotKept(Logger, report.Kind, report.Location, agent, exception.Message);
        }
    }

    /// <summary>
    /// An agent's first message on a connection: what it is (labels, capacity) and runs. Recorded before the agent
    /// counts as available for placement, then the agent is caught up with the store.
    /// </summary>
    private async Task HelloAsync(AgentSession session, AgentHello hello)
    {
        Dictionary<string, string> labels;
        try
        {
            labels = Placement.ParseLabels(hello.Labels.Select(l => $"{l.Key}={l.Value}"), "label");
        }
        catch (ArgumentException)
        {
            // The agent checks its labels before it connects; one that sends bad ones anyway gets none.
            labels = [];
        }

        await store.RecordAgentAsync(session.Name, labels, JsonSerializer.Serialize(hello.Capacity, AgentJson.Wire.HostCapacity), CancellationToken.None).ConfigureAwait(false);
        Metrics.AgentCapacity(session.Name, hello.Capacity);
        if (hello.Load is { } load)
        {
            Metrics.AgentLoad(session.Name, load);
            await store.RecordAgentLoadAsync(session.Name, JsonSerializer.Serialize(load, AgentJson.Wire.AgentLoad), CancellationToken.None).ConfigureAwait(false);
        }

        await EndDrainsAsync(
            session.Name,
            hello.Locations.ToDictionary(l => l.Location, l => l.Draining ?? [], StringComparer.Ordinal),
            "no longer draining: its agent came back without it (an agent that restarts ends its drains)",
            CancellationToken.None).ConfigureAwait(false);
        Interlocked.Exchange(ref _agentConnected, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        _ = CatchUpAsync(session, hello, stopping);
    }

    /// <summary>
    /// Records <c>Stopped</c> (with <paramref name="message"/>) for the releases <paramref name="agent"/> last reported
    /// draining and does not hold (<paramref name="held"/>: the releases it still drains, by location), so that calls pinned
    /// to them are refused at once rather than queued for nobody (docs/tasks.md, "Pins"). Called when an agent comes back
    /// without some (it restarted, and its drains ended with its process: its hello lists those it still drains), and when
    /// the server gives up on an agent gone past the grace period (it holds none as far as the server can tell).
    /// </summary>
    private async Task EndDrainsAsync(string agent, IReadOnlyDictionary<string, IReadOnlyList<string>> held, string message, CancellationToken cancellationToken)
    {
        foreach (var location in await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (Api.Json.Tasks(location.TasksJson).Count == 0)
            {
                continue;
            }

            var lost = (await store.ListLocationHealthAsync(location.Name, IMetadataStore.KeptHealthReportsPerLocation, cancellationToken).ConfigureAwait(false))
                .Where(report => report.Agent == agent)
                .GroupBy(report => report.Release)
                .Where(newestFirst => newestFirst.First().Kind == "Draining" && !held.GetValueOrDefault(location.Name, []).Contains(newestFirst.Key))
                .Select(newestFirst => newestFirst.Key);
            foreach (var release in lost)
            {
                // Only while still draining: another server giving up on the agent too, or the agent's own report, may be first.
                await store.AppendLocationHealthIfNewestIsAsync(
                    new LocationHealthRecord(location.Name, agent, release, "Stopped", message, time.GetUtcNow()),
                    "Draining",
                    cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
