using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;

namespace Skiff.Server.Agents;

/// <summary>
/// The agents connected to this server and which one hosts which location. A location goes to the
/// connected agent with the fewest locations and stays there while it is connected. When an agent
/// connects, every live location it should host is activated on it again, so an agent or server restart
/// converges back to what the metadata says is live.
/// </summary>
internal sealed class AgentHub(IMetadataStore store, RunService runs, TimeSpan activationTimeout)
{
    private readonly ConcurrentDictionary<string, AgentSession> _agents = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _assignments = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, JsonObject> _lastReports = new(StringComparer.Ordinal);
    private TaskCompletionSource _agentConnected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyCollection<string> Agents => [.. _agents.Keys];

    /// <summary>The last thing an agent reported about a location (crashed, restarted, unhealthy, …).</summary>
    public JsonObject? LastReport(string location) => _lastReports.GetValueOrDefault(location);

    public async Task ServeAsync(string name, WebSocket socket, CancellationToken cancellationToken)
    {
        var session = new AgentSession(name, socket)
        {
            OnMessage = HandleMessageAsync,
            OnReply = runs.HandleReplyAsync,
        };
        if (_agents.TryRemove(name, out var previous))
        {
            previous.Closed.TrySetResult();
        }

        _agents[name] = session;
        Interlocked.Exchange(ref _agentConnected, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        var receiving = session.ReceiveLoopAsync(cancellationToken);
        _ = ReconcileAsync(session, cancellationToken);
        try
        {
            await receiving.ConfigureAwait(false);
        }
        finally
        {
            Forget(name, session);
        }
    }

    private void Forget(string name, AgentSession session)
    {
        if (_agents.TryGetValue(name, out var current) && current == session)
        {
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
                    new JsonObject { ["type"] = "activate", ["location"] = location.Name, ["release"] = release.ToString() },
                    activationTimeout,
                    cancellationToken).ConfigureAwait(false);
            }
            catch (AgentUnavailableException)
            {
                return;
            }
        }
    }

    private async Task HandleMessageAsync(JsonObject message)
    {
        switch ((string?)message["type"])
        {
            case "run_event" when message["event"] is JsonObject runEvent && (string?)message["run"] is { } runId:
                await runs.AppendEventAsync(runId, runEvent, CancellationToken.None).ConfigureAwait(false);
                break;
            case "report" when (string?)message["location"] is { } location:
                _lastReports[location] = message;
                break;
        }
    }
}
