using Skiff.Core;
using Skiff.Core.Messaging;
using Skiff.Server.Agents;
using Skiff.Server.Coordination;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;
using Skiff.Server.Tests.Metadata;

namespace Skiff.Server.Tests.Coordination;

/// <summary>
/// Which agents a server picks for a location: by labels, draining, load and liveness of the server each agent
/// is connected to, and what it says when none fits. The agents here are recorded in the store as other servers
/// would record them, so no agent process is needed.
/// </summary>
public sealed class AgentPlacementTests : IAsyncLifetime
{
    private static readonly TimeSpan ServerGrace = TimeSpan.FromSeconds(10);
    private static readonly Digest Release = Digest.Compute("release"u8);
    private readonly TestDatabase _database = new();
    private IMetadataStore _store = null!;
    private AgentHub _agents = null!;

    public async Task InitializeAsync()
    {
        _store = await _database.OpenAsync();
        var bus = new InProcessServerBus("server-me");
        _agents = new AgentHub(_store, new RunService(_store, bus, _database.Clock), bus, TimeSpan.FromMinutes(3), TimeSpan.FromMinutes(1), ServerGrace, _database.Clock, CancellationToken.None);
        await _store.HeartbeatServerAsync("server-b", CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _database.Dispose();
    }

    [Theory]
    [InlineData("gpu", "'gpu' has no value: write gpu=VALUE, for example gpu=h200 (gpu= for an empty value).")]
    [InlineData("gpu=h200,zone", "'zone' has no value: write zone=VALUE")]
    [InlineData("gpu:h200", "'gpu:h200' has no value")]
    [InlineData("-gpu=h200", "'-gpu=h200' is not a constraint: write key=value")]
    [InlineData("gpu=h200,gpu=a100", "constraint 'gpu' is given twice, as h200 and a100; give it once.")]
    public void A_constraint_that_is_not_key_equals_value_is_refused_saying_how_to_write_it(string given, string message)
    {
        Should.Throw<ArgumentException>(() => Placement.ParseLabels([given], "constraint")).Message.ShouldStartWith(message);
    }

    [Fact]
    public void An_empty_value_is_a_label_kubernetes_allows()
    {
        Placement.ParseLabels(["gpu=,zone=a"], "label").ShouldBe(new Dictionary<string, string> { ["gpu"] = "", ["zone"] = "a" });
    }

    [Fact]
    public async Task A_location_with_a_constraint_goes_to_the_agent_whose_labels_fit_and_the_choice_is_recorded()
    {
        await ConnectAsync("cpu-1", "zone=a");
        await ConnectAsync("gpu-1", "zone=a,gpu=h200");

        var agent = await _agents.AgentForRunAsync(Location(constraints: "gpu=h200"), TimeSpan.FromSeconds(5), CancellationToken.None);

        agent.ShouldBe(new AgentLink("gpu-1", "server-b"));
        (await _store.ListPlacementsAsync(CancellationToken.None))["analytics"].ShouldBe(["gpu-1"]);
    }

    [Fact]
    public async Task A_new_location_goes_to_the_agent_with_the_fewest_locations_and_never_to_a_draining_one()
    {
        await ConnectAsync("worker-1", "");
        await ConnectAsync("worker-2", "");
        await ConnectAsync("worker-3", "");
        await _store.ReplacePlacementAsync("reports", [], ["worker-1"], CancellationToken.None);
        await _store.SetAgentDrainingAsync("worker-2", true, CancellationToken.None);

        var agent = await _agents.AgentForRunAsync(Location(), TimeSpan.FromSeconds(5), CancellationToken.None);

        agent.Name.ShouldBe("worker-3");
    }

    [Fact]
    public async Task Runs_of_a_location_with_replicas_take_turns_between_its_agents()
    {
        await ConnectAsync("worker-1", "");
        await ConnectAsync("worker-2", "");
        await _store.ReplacePlacementAsync("analytics", [], ["worker-1", "worker-2"], CancellationToken.None);

        var chosen = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            chosen.Add((await _agents.AgentForRunAsync(Location(replicas: 2), TimeSpan.FromSeconds(5), CancellationToken.None)).Name);
        }

        chosen.Order().ShouldBe(["worker-1", "worker-1", "worker-2", "worker-2"]);
    }

    [Fact]
    public async Task A_location_no_agent_fits_is_refused_naming_the_constraint_and_every_agent_checked()
    {
        await ConnectAsync("cpu-1", "zone=a");
        await ConnectAsync("gpu-1", "gpu=a100");
        await ConnectAsync("gpu-2", "gpu=h200");
        await _store.SetAgentDrainingAsync("gpu-2", true, CancellationToken.None);

        var refusal = await Should.ThrowAsync<AgentUnavailableException>(() => _agents.AgentForRunAsync(Location(constraints: "gpu=h200"), TimeSpan.FromMilliseconds(200), CancellationToken.None));

        refusal.Message.ShouldBe("'analytics' needs an agent with gpu=h200, and none can host it; checked cpu-1 (no gpu); gpu-1 (gpu=a100, not h200); gpu-2 (draining).");
    }

    [Fact]
    public async Task A_deploy_of_a_pool_that_scales_to_zero_with_no_agent_says_to_start_one()
    {
        await ConnectAsync("cpu-1", "zone=a");
        using var caller = new CancellationTokenSource(TimeSpan.FromSeconds(3));

        var refusal = await Should.ThrowAsync<AgentUnavailableException>(() => _agents.ActivateAsync(
            "analytics", Release.ToString(), null, new Placement(8, new Dictionary<string, string> { ["pool"] = "meshing" }) { MinReplicas = 0 }, null, null, null, caller.Token));

        refusal.Message.ShouldStartWith("'analytics' needs an agent with pool=meshing, and none can host it; checked cpu-1 (no pool).");
        refusal.Message.ShouldContain("A pool that scales to zero (--replicas 0..N) still needs one such agent connected while it is deployed");
        refusal.Message.ShouldContain("kubectl scale deployment NAME --replicas=1");
    }

    [Fact]
    public async Task A_deploy_no_connected_agent_fits_is_refused_at_once_when_no_fitting_agent_is_away()
    {
        await ConnectAsync("cpu-1", "zone=a");
        // Given up on well before the 10 s an activation waits for agents that may still connect.
        using var caller = new CancellationTokenSource(TimeSpan.FromSeconds(3));

        var refusal = await Should.ThrowAsync<AgentUnavailableException>(() =>
            _agents.ActivateAsync("analytics", Release.ToString(), null, new Placement(1, new Dictionary<string, string> { ["gpu"] = "h200" }), null, null, null, caller.Token));

        refusal.Message.ShouldBe("'analytics' needs an agent with gpu=h200, and none can host it; checked cpu-1 (no gpu).");
    }

    [Fact]
    public async Task A_busy_pool_whose_scaler_asks_for_more_agents_than_there_are_is_deployed_on_those_there_are()
    {
        await ConnectAsync("worker-1", "");
        await _store.ReplacePlacementAsync("meshing", [], ["worker-1"], CancellationToken.None);
        // Its work asks for 3 replicas (0..3), and there is one agent.
        _agents.ScaleTo("meshing", 3);
        using var caller = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        var reply = await _agents.ActivateAsync(
            "meshing", Release.ToString(), null, new Placement(3, new Dictionary<string, string>()) { MinReplicas = 0 }, null, null, null, caller.Token);

        // Tried on worker-1 (whose server, with SQLite, this one cannot reach), not refused for want of 3 agents.
        reply.ShouldBeOfType<AgentErrorReply>().Message.ShouldStartWith("server 'server-b' cannot be reached from this one");
    }

    [Fact]
    public async Task Agents_of_a_server_that_stopped_heartbeating_count_as_not_connected()
    {
        await _store.HeartbeatServerAsync("server-dead", CancellationToken.None);
        await _store.RecordAgentAsync("worker-1", new Dictionary<string, string>(), "{}", CancellationToken.None);
        await _store.AgentConnectedAsync("worker-1", "server-dead", CancellationToken.None);
        _database.Clock.Advance(ServerGrace + TimeSpan.FromSeconds(1));
        await _store.HeartbeatServerAsync("server-b", CancellationToken.None);
        await ConnectAsync("worker-2", "");

        var agent = await _agents.AgentForRunAsync(Location(), TimeSpan.FromSeconds(5), CancellationToken.None);

        agent.ShouldBe(new AgentLink("worker-2", "server-b"));
    }

    [Fact]
    public async Task With_no_agent_at_all_the_refusal_says_how_to_start_one()
    {
        var failure = await Should.ThrowAsync<AgentUnavailableException>(() => _agents.AgentForRunAsync(Location(), TimeSpan.FromMilliseconds(200), CancellationToken.None));

        failure.Message.ShouldStartWith("no agent is connected to host 'analytics'.");
    }

    private async Task ConnectAsync(string agent, string labels)
    {
        await _store.RecordAgentAsync(agent, Placement.ParseLabels([labels], "label"), "{}", CancellationToken.None);
        await _store.AgentConnectedAsync(agent, "server-b", CancellationToken.None);
    }

    private LocationRecord Location(int replicas = 1, string? constraints = null) =>
        new("analytics", "d-1", Release, "[]", _database.Clock.GetUtcNow(), null, replicas, constraints);
}
