using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Server.Tests.Metrics;
using Skiff.Testing;

namespace Skiff.Server.Tests.Tasks;

/// <summary>
/// A pool that scales (<c>--replicas 0..N</c>) whose release also declares jobs (docs/tasks.md, "Scaling a pool"): a run
/// of one of its jobs is its work, so the pool is not scaled down, and its agent not told to stop it, while the run
/// goes; it goes down to MIN an idle period after the run ended, and a run at zero places it again. A second pool with
/// no work, deployed after the run started, is the witness that the scaler made a pass past the first one's idle
/// period. A scripted agent at the protocol's boundary holds the runs.
/// </summary>
public sealed class PoolRunsTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(3);
    private static readonly JsonArray Declared = [new JsonObject { ["name"] = "reconstruct" }];
    private readonly Workspace _workspace = new();
    private readonly UnplaceablePoolTests.CollectingLogs _logs = new();
    private RunningServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await SkiffServerHost.StartAsync(
            new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0, PoolIdlePeriod = Idle, LoggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs)) },
            TimeProvider.System,
            CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task A_run_of_the_pools_own_job_keeps_it_on_the_agent_running_it_until_an_idle_period_after_the_run_ended()
    {
        await using var agent = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "a-1", new HostCapacity(4), new AgentLoad(0, 0, 0, []),
            tasks: new Dictionary<string, JsonArray> { ["meshing"] = Declared, ["witness"] = Declared });
        agent.HoldsRuns = true;
        using var http = new HttpClient { BaseAddress = _server.Url };
        http.DefaultRequestHeaders.Authorization = new("Bearer", _server.Token);
        await MetricsEndpointTests.DeployAsync(_server, "meshing", await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "meshing", "1.0.0"), replicas: (0, 2));

        using (var started = await http.PostAsJsonAsync("api/v1/runs", new { location = "meshing", job = "mesh_all" }))
        {
            var body = await started.Content.ReadAsStringAsync();
            started.StatusCode.ShouldBe(HttpStatusCode.Created, body);
            ((string?)JsonNode.Parse(body)!["status"]).ShouldBe("running", body);
        }

        var run = agent.HeldRuns.Keys.ShouldHaveSingleItem();
        // Deactivations from before the run (the pool may have gone to zero while the run was asked for) do not count.
        var before = agent.Deactivated.Count;
        var scaledToZeroBefore = _logs.Lines.Count(l => l.StartsWith("pool meshing has ", StringComparison.Ordinal) && l.Contains("scaling to 0", StringComparison.Ordinal));
        await MetricsEndpointTests.DeployAsync(_server, "witness", await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "witness", "1.0.0"), replicas: (0, 2));

        // Both pools were first seen before the witness's idle period began, and a pass looks at meshing before witness.
        await WaitUntilAsync(() => agent.Deactivated.Contains("witness"), "the idle witness pool is scaled to zero");
        agent.Deactivated.Skip(before).ShouldNotContain("meshing", "the pool runs a run of its own job");
        (await _server.Store.ListPlacementsAsync(CancellationToken.None)).GetValueOrDefault("meshing").ShouldBe(["a-1"]);
        // Busy, not merely kept by the scale-down's check of the agent: the pool was never to go down while its run went.
        _logs.Lines.Where(l => l.StartsWith("pool meshing has ", StringComparison.Ordinal) && l.Contains("scaling to 0", StringComparison.Ordinal)).Skip(scaledToZeroBefore).ShouldBeEmpty();

        await agent.EndRunAsync(run);
        await WaitUntilAsync(() => agent.Deactivated.Skip(before).Contains("meshing"), "the pool goes to zero once its run has ended");
        (await _server.Store.GetRunAsync(run, CancellationToken.None))!.Status.ShouldBe("succeeded");

        // At zero, a run of its job places the pool on an agent as it starts, as a task call would.
        ((await _server.Store.ListPlacementsAsync(CancellationToken.None)).GetValueOrDefault("meshing") ?? []).ShouldBeEmpty();
        using (var started = await http.PostAsJsonAsync("api/v1/runs", new { location = "meshing", job = "mesh_all" }))
        {
            var body = await started.Content.ReadAsStringAsync();
            started.StatusCode.ShouldBe(HttpStatusCode.Created, body);
            ((string?)JsonNode.Parse(body)!["status"]).ShouldBe("running", body);
        }

        (await _server.Store.ListPlacementsAsync(CancellationToken.None)).GetValueOrDefault("meshing").ShouldBe(["a-1"]);
        agent.HeldRuns.Count.ShouldBe(1);
    }

    /// <summary>Waits for <paramref name="condition"/>, failing with <paramref name="what"/> after a minute.</summary>
    internal static Task WaitUntilAsync(Func<bool> condition, string what) => WaitUntilAsync(() => Task.FromResult(condition()), what);

    /// <inheritdoc cref="WaitUntilAsync(Func{bool}, string)"/>
    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (!await condition())
        {
            deadline.IsCancellationRequested.ShouldBeFalse($"waited {Deadline.TotalSeconds:0} s for this: {what}");
            await Task.Delay(50, CancellationToken.None);
        }
    }
}
