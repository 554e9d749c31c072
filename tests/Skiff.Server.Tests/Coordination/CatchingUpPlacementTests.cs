using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Server.Tests.Metrics;
using Skiff.Server.Tests.Tasks;
using Skiff.Testing;

namespace Skiff.Server.Tests.Coordination;

/// <summary>
/// An agent the server is still catching up (its first connection steps not done: its placed locations not yet live on it,
/// and none of its pools' workers started) is the last choice for a new placement and for a run, where an agent caught up
/// can take them (docs/agent.md, "Placement"). Here it stays being caught up until the test lets it answer the first step.
/// </summary>
public sealed class CatchingUpPlacementTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);
    private readonly Workspace _workspace = new();
    private readonly TaskCompletionSource _catchUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RunningServer _server = null!;
    private ScriptedAgent _ready = null!;
    private ScriptedAgent _catching = null!;

    public async Task InitializeAsync()
    {
        _server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0 }, TimeProvider.System, CancellationToken.None);
        _ready = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "b-ready", new HostCapacity(4), new AgentLoad(0, 0, 0, []),
            tasks: new Dictionary<string, JsonArray> { ["meshing"] = [new JsonObject { ["name"] = "reconstruct" }] });
        _ready.HoldsRuns = true;
        await MetricsEndpointTests.DeployAsync(_server, "meshing", await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "meshing", "1.0.0"));
        // A pool's worker starts on an agent only once it is caught up: a task handed to b-ready shows it is.
        await _ready.SendAsync(new AgentCallTask("r-0:mesh:1/1", "r-0:mesh:1", "meshing", "reconstruct", "r-0", "mesh", 1, JsonValue.Create(1)));
        using (var deadline = new CancellationTokenSource(Deadline))
        {
            (await _ready.TaskMessages.Reader.ReadAsync(deadline.Token)).ShouldBeOfType<AgentRunTask>();
        }

        // First by name, and with fewer locations than b-ready: the one chosen before, were it caught up.
        _catching = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "a-catching", new HostCapacity(4), new AgentLoad(0, 0, 0, []), catchUp: _catchUp.Task);
        _catching.HoldsRuns = true;
        await PoolRunsTests.WaitUntilAsync(async () => (await _server.Store.ListAgentProfilesAsync(CancellationToken.None)).Any(p => p.Name == "a-catching"), "a-catching's hello to be recorded");
    }

    public async Task DisposeAsync()
    {
        _catchUp.TrySetResult();
        await _catching.DisposeAsync();
        await _ready.DisposeAsync();
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task A_new_location_goes_to_an_agent_caught_up_rather_than_a_less_loaded_one_still_being_caught_up()
    {
        await MetricsEndpointTests.DeployAsync(_server, "reports", await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "reports", "1.0.0"));

        (await _server.Store.ListPlacementsAsync(CancellationToken.None))["reports"].ShouldBe(["b-ready"]);
    }

    [Fact]
    public async Task Runs_of_a_location_on_two_agents_go_to_the_one_caught_up_while_the_other_is_being_caught_up()
    {
        await MetricsEndpointTests.DeployAsync(_server, "reports", await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "reports", "1.0.0"));
        var placed = (await _server.Store.ListPlacementsAsync(CancellationToken.None))["reports"];
        (await _server.Store.ReplacePlacementAsync("reports", placed, ["a-catching", "b-ready"], CancellationToken.None)).ShouldBeTrue();
        using var http = MetricsEndpointTests.Http(_server, _server.Token);

        for (var i = 0; i < 2; i++)
        {
            using var started = await http.PostAsJsonAsync("api/v1/runs", new { location = "reports", job = "daily" });
            var body = await started.Content.ReadAsStringAsync();
            started.StatusCode.ShouldBe(HttpStatusCode.Created, body);
        }

        // Taking turns, one would have gone to a-catching.
        _ready.HeldRuns.Count.ShouldBe(2);
        _catching.HeldRuns.ShouldBeEmpty();
    }
}
