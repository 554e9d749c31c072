using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Server.Tests.Metrics;
using Skiff.Testing;

namespace Skiff.Server.Tests.Tasks;

/// <summary>
/// A server restarted under a scaling pool (docs/tasks.md, "Scaling a pool"): for the agent grace period after it starts,
/// the agents the pool is placed on are expected to reconnect, so its scaler does not take the pool off them. Taken off
/// (as it was), the pool's agent, reconnecting, raced a scale-up placing it there again, was told to stop it, and its
/// worker was then handed the pool's tasks, each refused ("no live version") until the call was given up on.
/// </summary>
public sealed class PoolRestartTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly JsonArray Declared = [new JsonObject { ["name"] = "sleep" }];
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task After_a_restart_a_pool_stays_placed_on_its_agent_not_reconnected_yet_for_the_agent_grace_period()
    {
        var tasks = new Dictionary<string, JsonArray> { ["pool"] = Declared, ["witness"] = Declared };
        await using (var first = await StartAsync(idle: TimeSpan.FromMinutes(10), new UnplaceablePoolTests.CollectingLogs()))
        {
            await using var agent = await ScriptedAgent.ConnectAsync(first.Url, first.Token, "p1", new HostCapacity(4), new AgentLoad(0, 0, 0, []), tasks: tasks);
            await MetricsEndpointTests.DeployAsync(first, "pool", await MetricsEndpointTests.ReleaseAsync(first, _workspace, "pool", "1.0.0"), replicas: (1, 2));
            await MetricsEndpointTests.DeployAsync(first, "witness", await MetricsEndpointTests.ReleaseAsync(first, _workspace, "witness", "1.0.0"), replicas: (0, 2));
            (await first.Store.ListPlacementsAsync(CancellationToken.None)).GetValueOrDefault("pool").ShouldBe(["p1"]);
            (await first.Store.ListPlacementsAsync(CancellationToken.None)).GetValueOrDefault("witness").ShouldBe(["p1"]);
        }

        // Restarted on the same data, p1 not back yet. The idle witness pool (MIN 0) going to zero shows passes were made.
        var logs = new UnplaceablePoolTests.CollectingLogs();
        await using var server = await StartAsync(idle: TimeSpan.FromSeconds(1), logs);
        await PoolRunsTests.WaitUntilAsync(async () => ((await server.Store.ListPlacementsAsync(CancellationToken.None)).GetValueOrDefault("witness") ?? []).Count == 0, "the idle witness pool goes to zero");
        (await server.Store.ListPlacementsAsync(CancellationToken.None)).GetValueOrDefault("pool").ShouldBe(["p1"], "p1 is expected back within the grace period");
        logs.Lines.ShouldNotContain(l => l.StartsWith("pool pool has ", StringComparison.Ordinal), "the pool has its MIN replica");
    }

    private Task<RunningServer> StartAsync(TimeSpan idle, UnplaceablePoolTests.CollectingLogs logs) => SkiffServerHost.StartAsync(
        new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0, PoolIdlePeriod = idle, LoggerFactory = LoggerFactory.Create(b => b.AddProvider(logs)) },
        TimeProvider.System,
        CancellationToken.None);
}
