using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Server.Tests.Metrics;
using Skiff.Server.Tests.Tasks;
using Skiff.Testing;

namespace Skiff.Server.Tests.Api;

/// <summary>
/// A location's health in <c>GET /locations</c> is its live release's: an agent's report on another release (a pool's
/// replaced release, draining: docs/tasks.md "Pins") is shown as the location's last report but does not change it.
/// </summary>
public sealed class LocationHealthTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task A_crash_of_a_replaced_release_leaves_the_live_release_healthy_and_a_crash_of_the_live_one_does_not()
    {
        await using var server = await SkiffServerHost.StartAsync(
            new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0 }, TimeProvider.System, CancellationToken.None);
        await using var agent = await ScriptedAgent.ConnectAsync(server.Url, server.Token, "p1", new HostCapacity(4), new AgentLoad(0, 0, 0, []),
            tasks: new Dictionary<string, JsonArray> { ["pool"] = [new JsonObject { ["name"] = "sleep" }] });
        var replaced = await MetricsEndpointTests.ReleaseAsync(server, _workspace, "pool", "1.0.0");
        await MetricsEndpointTests.DeployAsync(server, "pool", replaced);
        var live = await MetricsEndpointTests.ReleaseAsync(server, _workspace, "pool", "2.0.0");
        await MetricsEndpointTests.DeployAsync(server, "pool", live);

        await agent.SendAsync(new LocationReport("pool", replaced.ToString(), "Crashed", "the replaced release crashed", DateTimeOffset.UtcNow));
        var location = await LastReportedAsync(server, "the replaced release crashed");
        ((string?)location["health"]).ShouldBe("healthy", location.ToJsonString());
        ((string?)location["last_report"]!["kind"]).ShouldBe("crashed");

        await agent.SendAsync(new LocationReport("pool", live.ToString(), "Crashed", "the live release crashed", DateTimeOffset.UtcNow));
        location = await LastReportedAsync(server, "the live release crashed");
        ((string?)location["health"]).ShouldBe("restarting", location.ToJsonString());
    }

    [Fact]
    public async Task An_agent_back_without_a_release_it_reported_draining_has_it_stopped_in_the_history_and_one_still_draining_it_does_not()
    {
        await using var server = await SkiffServerHost.StartAsync(
            new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0 }, TimeProvider.System, CancellationToken.None);
        var tasks = new Dictionary<string, JsonArray> { ["pool"] = [new JsonObject { ["name"] = "sleep" }] };
        var agent = await ScriptedAgent.ConnectAsync(server.Url, server.Token, "p1", new HostCapacity(4), new AgentLoad(0, 0, 0, []), tasks: tasks);
        var replaced = await MetricsEndpointTests.ReleaseAsync(server, _workspace, "pool", "1.0.0");
        await MetricsEndpointTests.DeployAsync(server, "pool", replaced);
        var live = await MetricsEndpointTests.ReleaseAsync(server, _workspace, "pool", "2.0.0");
        await MetricsEndpointTests.DeployAsync(server, "pool", live);
        await agent.SendAsync(new LocationReport("pool", replaced.ToString(), "Draining", "replaced by the live release", DateTimeOffset.UtcNow));
        await NewestOnAsync(server, replaced, "Draining");
        await agent.DisposeAsync();

        // Back, still draining it (a dropped connection): the history is left as it was. The report sent after the hello
        // shows the hello was handled (an agent's messages are handled in order).
        agent = await ScriptedAgent.ConnectAsync(server.Url, server.Token, "p1", new HostCapacity(4), new AgentLoad(0, 0, 0, []), tasks: tasks,
            held: [new HeldLocation("pool", live.ToString(), [replaced.ToString()])],
            afterHello: [new LocationReport("pool", live.ToString(), "Activated", "back with its drain", DateTimeOffset.UtcNow)]);
        await NewestOnAsync(server, live, "Activated");
        (await NewestOnAsync(server, replaced, "Draining")).Message.ShouldBe("replaced by the live release");
        await agent.DisposeAsync();

        // Back without it (the agent restarted): the release it drained is recorded stopped.
        await using var restarted = await ScriptedAgent.ConnectAsync(server.Url, server.Token, "p1", new HostCapacity(4), new AgentLoad(0, 0, 0, []), tasks: tasks,
            held: [new HeldLocation("pool", live.ToString())]);
        (await NewestOnAsync(server, replaced, "Stopped")).Message.ShouldStartWith("no longer draining: its agent came back without it");
    }

    /// <summary>Waits until the newest report on <paramref name="release"/> (of agent <paramref name="by"/>, if given) in the pool's health history is of <paramref name="kind"/>; returns it.</summary>
    internal static async Task<Skiff.Server.Metadata.LocationHealthRecord> NewestOnAsync(RunningServer server, Skiff.Core.Digest release, string kind, string? by = null)
    {
        Skiff.Server.Metadata.LocationHealthRecord? newest = null;
        await PoolRunsTests.WaitUntilAsync(
            async () => (newest = (await server.Store.ListLocationHealthAsync("pool", 200, CancellationToken.None)).FirstOrDefault(r => r.Release == release.ToString() && (by is null || r.Agent == by)))?.Kind == kind,
            $"the newest report on {release.Short} to be {kind}");
        return newest!;
    }

    /// <summary>The pool as <c>GET /locations</c> shows it, once its last report is the one with <paramref name="message"/>.</summary>
    private static async Task<JsonNode> LastReportedAsync(RunningServer server, string message)
    {
        using var http = MetricsEndpointTests.Http(server, server.Token);
        JsonNode? pool = null;
        await PoolRunsTests.WaitUntilAsync(
            async () => (pool = JsonNode.Parse(await http.GetStringAsync("api/v1/locations"))!.AsArray().Single(l => (string?)l!["location"] == "pool"))!["last_report"]?["message"]?.GetValue<string>() == message,
            $"the report '{message}'");
        return pool!;
    }
}
