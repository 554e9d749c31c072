using Skiff.Server.Agents;
using Skiff.Server.Coordination;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;
using Skiff.Server.Tests.Metadata;

namespace Skiff.Server.Tests.Coordination;

/// <summary>Which agent a server picks for a location when the agents are connected to other servers.</summary>
public sealed class AgentPlacementTests : IAsyncLifetime
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(10);
    private readonly TestDatabase _database = new();
    private IMetadataStore _store = null!;
    private AgentHub _agents = null!;

    public async Task InitializeAsync()
    {
        _store = await _database.OpenAsync();
        var bus = new InProcessServerBus("server-me");
        _agents = new AgentHub(_store, new RunService(_store, bus, _database.Clock), bus, TimeSpan.FromMinutes(3), TimeSpan.FromMinutes(1), Grace, _database.Clock, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _database.Dispose();
    }

    [Fact]
    public async Task An_agent_on_a_live_server_is_used_through_that_server_and_the_choice_is_recorded()
    {
        await _store.HeartbeatServerAsync("server-b", CancellationToken.None);
        await _store.AgentConnectedAsync("worker-1", "server-b", CancellationToken.None);

        var agent = await _agents.AgentForAsync("analytics", TimeSpan.FromSeconds(5), CancellationToken.None);

        agent.ShouldBe(new AgentLink("worker-1", "server-b"));
        (await _store.ListAssignmentsAsync(CancellationToken.None))["analytics"].ShouldBe("worker-1");
    }

    [Fact]
    public async Task A_location_moves_off_an_agent_whose_server_stopped_heartbeating_to_one_that_is_connected()
    {
        await _store.HeartbeatServerAsync("server-dead", CancellationToken.None);
        await _store.AgentConnectedAsync("worker-1", "server-dead", CancellationToken.None);
        await _store.AssignLocationAsync("analytics", "worker-1", replacing: null, CancellationToken.None);
        _database.Clock.Advance(Grace + TimeSpan.FromSeconds(1));
        await _store.HeartbeatServerAsync("server-b", CancellationToken.None);
        await _store.AgentConnectedAsync("worker-2", "server-b", CancellationToken.None);

        var agent = await _agents.AgentForAsync("analytics", TimeSpan.FromSeconds(5), CancellationToken.None);

        agent.ShouldBe(new AgentLink("worker-2", "server-b"));
        (await _store.ListAssignmentsAsync(CancellationToken.None))["analytics"].ShouldBe("worker-2");
    }

    [Fact]
    public async Task With_only_agents_of_dead_servers_recorded_no_agent_is_available()
    {
        await _store.HeartbeatServerAsync("server-dead", CancellationToken.None);
        await _store.AgentConnectedAsync("worker-1", "server-dead", CancellationToken.None);
        _database.Clock.Advance(Grace + TimeSpan.FromSeconds(1));

        var failure = await Should.ThrowAsync<AgentUnavailableException>(() => _agents.AgentForAsync("analytics", TimeSpan.FromMilliseconds(200), CancellationToken.None));

        failure.Message.ShouldStartWith("no agent is connected to host 'analytics'.");
    }
}
