using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;

namespace Skiff.Server.Agents;

/// <summary>
/// The agents connected to this server and which one hosts which location. A location goes to the
/// connected agent with the fewest locations and stays there while it is connected. When an agent
/// connects it is first asked to resend the events of its runs that the server missed while they were
/// apart, then every live location it should host is activated on it again, so an agent or server
/// restart converges back to what the metadata says. Runs of an agent that stays away longer than the
/// grace period are failed, so none is left running forever.
/// </summary>
internal sealed class AgentHub(IMetadataStore store, RunService runs, TimeSpan activationTimeout, TimeSpan gracePeriod, TimeProvider time, CancellationToken stopping)
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _absentSince = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, AgentSession> _agents = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _assignments = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, JsonObject> _lastReports = new(StringComparer.Ordinal);
    private TaskCompletionSource _agentConnected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyCollection<string> Agents => [.. _agents.Keys];

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
            Forget(name, session);
        }
    }

    /// <summary>
    /// Called once as the server starts: runs recorded as running belong to agents that have not
    /// reconnected yet; each gets the grace period to come back and resume them.
    /// </summary>
    public async Task WatchUnclaimedRunsAsync()
    {
        var running = await store.ListRunningRunsAsync(stopping).ConfigureAwait(false);
        foreach (var run in running.Where(r => r.Agent is null))
        {
            await runs.FailLostRunAsync(run, "the server restarted while this run was going and does not know which agent ran it", stopping).ConfigureAwait(false);
        }

        foreach (var agent in running.Select(r => r.Agent).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            _absentSince.TryAdd(agent, time.GetUtcNow());
            _ = FailRunsIfAbsentAsync(agent, "was not connected when the server started");
        }
    }

    private void Forget(string name, AgentSession session)
    {
        if (_agents.TryGetValue(name, out var current) && current == session)
        {
            _absentSince[name] = time.GetUtcNow();
            _ = FailRunsIfAbsentAsync(name, $"disconnected at {time.GetUtcNow():HH:mm:ss} UTC");
            _agents.TryRemove(name, out _);
            foreach (var (location, agent) in _assignments)
            {
                if (agent == name)
                {
                    _assignments.TryRemove(location, out _);
                }
            }
        }
    }

    /// <summary>The agent that hosts (or will host) a location, waiting up to <paramref name="wait"/> for one to connect.</summary>
    public async Task<AgentSession> AgentForAsync(string location, TimeSpan wait, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(wait);
        while (true)
        {
            if (_assignments.TryGetValue(location, out var assigned) && _agents.TryGetValue(assigned, out var session))
            {
                return session;
            }

            var chosen = _agents.Values
                .OrderBy(a => _assignments.Values.Count(v => v == a.Name))
                .ThenBy(a => a.Name, StringComparer.Ordinal)
                .FirstOrDefault();
            if (chosen is not null)
            {
                _assignments[location] = chosen.Name;
                return chosen;
            }

            try
            {
                await Volatile.Read(ref _agentConnected).Task.WaitAsync(deadline.Token).ConfigureAwait(false);
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
        return await agent.RequestAsync(
            new JsonObject { ["type"] = "activate", ["location"] = location, ["release"] = release, ["memory_limit"] = memoryLimit },
            activationTimeout,
            cancellationToken).ConfigureAwait(false);
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

            foreach (var run in await store.ListRunningRunsAsync(stopping).ConfigureAwait(false))
            {
                if (run.Agent == agent)
                {
                    await runs.FailLostRunAsync(run, $"agent '{agent}', which ran this run, {what} and did not come back within {gracePeriod.TotalSeconds:0} s; what the run did after that is unknown", stopping).ConfigureAwait(false);
                }
            }
        }
        catch (Exception exception) when (exception is OperationCanceledException or ObjectDisposedException)
        {
            // The server is stopping; the next start watches these runs again.
        }
    }

    private async Task CatchUpAsync(AgentSession session, CancellationToken cancellationToken)
    {
        try
        {
            await ResumeRunsAsync(session, cancellationToken).ConfigureAwait(false);
            await ReconcileAsync(session, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is AgentUnavailableException or OperationCanceledException or ObjectDisposedException)
        {
            // The agent went away again (or the server is stopping); its next connection catches up.
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
        foreach (var location in await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (location.LiveRelease is not { } release)
            {
                continue;
            }

            var assigned = _assignments.GetOrAdd(location.Name, session.Name);
            if (assigned != session.Name)
            {
                continue;
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
