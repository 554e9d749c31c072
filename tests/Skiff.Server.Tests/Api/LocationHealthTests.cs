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
