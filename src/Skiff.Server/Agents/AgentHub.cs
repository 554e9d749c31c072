using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Server.Coordination;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;

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
    private readonly ConcurrentDictionary<string, JsonObject> _lastReports = new(StringComparer.Ordinal);
    private TaskCompletionSource _agentConnected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The last thing an agent reported about a location (crashed, restarted, unhealthy, …).</summary>
    public JsonObject? LastReport(string location) => _lastReports.GetValueOrDefault(location);

    public async Task ServeAsync(string name, WebSocket socket, CancellationToken cancellationToken)
    {
        var session = new AgentSession(name, socket) { OnReply = runs.HandleReplyAsync };
        session.OnMessage = message => HandleMessageAsync(session, message);
        if (_agents.TryRemove(name, out var previous))
        {
            previous.Closed.TrySetResult();
        }

        // Recorded before the session is usable, so a server asked for this agent a moment later finds it here.
        await store.AgentConnectedAsync(name, bus.ServerId, cancellationToken).ConfigureAwait(false);
        _agents[name] = session;
        _absentSince.TryRemove(name, out _);
        Interlocked.Exchange(ref _agentConnected, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        var receiving = session.ReceiveLoopAsync(cancellationToken);
        _ = CatchUpAsync(session, cancellationToken);
        try
        {
            await receiving.ConfigureAwait(false);
        }
        finally
        {
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

    /// <summary>The agent that hosts (or will host) a location, waiting up to <paramref name="wait"/> for one to connect.</summary>
    public async Task<AgentLink> AgentForAsync(string location, TimeSpan wait, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(wait);
        while (true)
        {
            // Taken before looking, so an agent connecting here in between is not missed.
            var connecting = Volatile.Read(ref _agentConnected).Task;
            var connected = await ConnectedAgentsAsync(cancellationToken).ConfigureAwait(false);
            var assignments = await store.ListAssignmentsAsync(cancellationToken).ConfigureAwait(false);
            var assigned = assignments.GetValueOrDefault(location);
            if (assigned is not null && connected.TryGetValue(assigned, out var holder))
            {
                return new AgentLink(assigned, holder);
            }

            var chosen = connected.Keys
                .OrderBy(a => assignments.Values.Count(v => v == a))
                .ThenBy(a => a, StringComparer.Ordinal)
                .FirstOrDefault();
            if (chosen is not null)
            {
                var winner = await store.AssignLocationAsync(location, chosen, assigned, cancellationToken).ConfigureAwait(false);
                if (connected.TryGetValue(winner, out var server))
                {
                    return new AgentLink(winner, server);
                }

                continue;
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
                throw new AgentUnavailableException($"no agent is connected to host '{location}'. Start one with `skiff agent --server URL` (or use `skiff up`, which runs one).");
            }
        }
    }

    /// <summary>Asks the location's agent to make the release live and waits for the outcome.</summary>
    public async Task<JsonObject> ActivateAsync(string location, string release, string? memoryLimit, CancellationToken cancellationToken)
    {
        var agent = await AgentForAsync(location, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        return await RequestAsync(
            agent,
            new JsonObject { ["type"] = "activate", ["location"] = location, ["release"] = release, ["memory_limit"] = memoryLimit },
            activationTimeout,
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends a request to an agent, here or through the server holding it, and returns its reply.</summary>
    public Task<JsonObject> RequestAsync(AgentLink agent, JsonObject message, TimeSpan timeout, CancellationToken cancellationToken) =>
        RelayAsync(agent, message, runStartedAt: null, timeout, cancellationToken);

    /// <summary>
    /// Sends a <c>start_run</c> to an agent. The run is recorded (running, on that agent, started at
    /// <paramref name="startedAt"/>) by the server holding the agent, as it reads the agent's answer and before
    /// any event of the run: a run the agent refuses is never recorded.
    /// </summary>
    public Task<JsonObject> StartRunAsync(AgentLink agent, JsonObject startRun, DateTimeOffset startedAt, TimeSpan timeout, CancellationToken cancellationToken) =>
        RelayAsync(agent, startRun, startedAt, timeout, cancellationToken);

    private Task<JsonObject> RelayAsync(AgentLink agent, JsonObject message, DateTimeOffset? runStartedAt, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (agent.Server == bus.ServerId)
        {
            return LocalRequestAsync(agent.Name, message, runStartedAt, timeout, cancellationToken);
        }

        var request = new JsonObject
        {
            ["agent"] = agent.Name,
            ["message"] = message,
            ["timeout_ms"] = (long)timeout.TotalMilliseconds,
            ["run_started_at"] = runStartedAt?.ToString("O"),
        };

        // A little longer than the agent gets, so the holding server's own timeout (with its message) comes first.
        return bus.RequestAsync(agent.Server, request, timeout + TimeSpan.FromSeconds(5), cancellationToken);
    }

    /// <summary>A request another server passed here for an agent connected to this one: the bus's <see cref="IServerBus.OnRequest"/>.</summary>
    public Task<JsonObject> HandleRelayedAsync(JsonObject request, CancellationToken cancellationToken) =>
        LocalRequestAsync(
            (string?)request["agent"] ?? throw new AgentUnavailableException("a relayed request named no agent."),
            (request["message"] as JsonObject)?.DeepClone().AsObject() ?? throw new AgentUnavailableException("a relayed request carried no message."),
            (string?)request["run_started_at"] is { } at ? DateTimeOffset.Parse(at, System.Globalization.CultureInfo.InvariantCulture) : null,
            TimeSpan.FromMilliseconds((long?)request["timeout_ms"] ?? (long)activationTimeout.TotalMilliseconds),
            cancellationToken);

    private async Task<JsonObject> LocalRequestAsync(string name, JsonObject message, DateTimeOffset? runStartedAt, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!_agents.TryGetValue(name, out var session))
        {
            throw new AgentUnavailableException($"agent '{name}' disconnected from server '{bus.ServerId}'; try again once it has reconnected.");
        }

        var runId = runStartedAt is null ? null : (string?)message["run"];
        if (runId is not null)
        {
            runs.Starting(new RunRecord(
                runId,
                (string)message["location"]!,
                Digest.Parse((string)message["release"]!),
                (string)message["job"]!,
                (message["params"] as JsonObject ?? []).ToJsonString(),
                RunStatuses.Running,
                runStartedAt!.Value,
                null,
                null,
                name));
        }

        try
        {
            var reply = await session.RequestAsync(message, timeout, cancellationToken).ConfigureAwait(false);
            if (runId is not null && (string?)reply["type"] == "error")
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
        }
        catch (Exception exception) when (exception is OperationCanceledException or ObjectDisposedException or SkiffException)
        {
            // The server is stopping (the next start watches these runs again), or the store is away (the next
            // heartbeat's watch, with several servers, looks again).
        }
    }

    private async Task CatchUpAsync(AgentSession session, CancellationToken cancellationToken)
    {
        try
        {
            await ResumeRunsAsync(session, cancellationToken).ConfigureAwait(false);
            await ReconcileAsync(session, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is AgentUnavailableException or OperationCanceledException or ObjectDisposedException or MetadataStoreException)
        {
            // The agent went away again (or the server is stopping, or the store is away); its next connection catches up.
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
            new JsonObject { ["type"] = "resume_runs", ["runs"] = new JsonObject(held.Select(r => KeyValuePair.Create(r.Id, (JsonNode?)r.LastSeq))) },
            activationTimeout,
            cancellationToken).ConfigureAwait(false);
        var unknown = (reply["unknown"] as JsonArray ?? []).Select(id => (string?)id).ToHashSet(StringComparer.Ordinal);
        foreach (var run in held.Where(r => unknown.Contains(r.Id)))
        {
            await runs.FailLostRunAsync(run, $"agent '{session.Name}' restarted while this run was going, and its process ended with it", cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task ReconcileAsync(AgentSession session, CancellationToken cancellationToken)
    {
        var assignments = await store.ListAssignmentsAsync(cancellationToken).ConfigureAwait(false);
        var connected = await ConnectedAgentsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var location in await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (location.LiveRelease is not { } release)
            {
                continue;
            }

            // Its own locations, and those of agents connected nowhere: the first agent back takes them.
            var assigned = assignments.GetValueOrDefault(location.Name);
            if (assigned != session.Name)
            {
                if (assigned is not null && assigned != session.Name && connected.ContainsKey(assigned))
                {
                    continue;
                }

                if (await store.AssignLocationAsync(location.Name, session.Name, assigned, cancellationToken).ConfigureAwait(false) != session.Name)
                {
                    continue;
                }
            }

            try
            {
                await session.RequestAsync(
                    new JsonObject { ["type"] = "activate", ["location"] = location.Name, ["release"] = release.ToString(), ["memory_limit"] = location.MemoryLimit },
                    activationTimeout,
                    cancellationToken).ConfigureAwait(false);
            }
            catch (AgentUnavailableException)
            {
                return;
            }
        }
    }

    private async Task HandleMessageAsync(AgentSession session, JsonObject message)
    {
        switch ((string?)message["type"])
        {
            case "run_event" when message["event"] is JsonObject runEvent && (string?)message["run"] is { } runId:
                if (await runs.AppendEventAsync(runId, runEvent, CancellationToken.None).ConfigureAwait(false))
                {
                    // The run's end is stored: the agent may forget its events.
                    await session.TrySendAsync(new JsonObject { ["type"] = "run_stored", ["run"] = runId }).ConfigureAwait(false);
                }

                break;
            case "report" when (string?)message["location"] is { } location:
                _lastReports[location] = message;
                break;
        }
    }
}
