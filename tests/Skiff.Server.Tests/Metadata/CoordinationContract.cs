using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>
/// The metadata contract for what servers sharing a store coordinate through (servers, agent connections,
/// location assignments, pending deployments), run against each store by the classes below it.
/// </summary>
public abstract class CoordinationContract : IAsyncLifetime
{
    private IContractDatabase _database = null!;
    private IMetadataStore _store = null!;

    public async Task InitializeAsync()
    {
        _database = await CreateDatabaseAsync();
        _store = await _database.OpenStoreAsync();
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _database.DisposeAsync();
    }

    private protected abstract Task<IContractDatabase> CreateDatabaseAsync();

    [Fact]
    public async Task ListPendingDeployments_ListsOnlyPendingOnes_OldestFirst_WithTheServerDrivingEach()
    {
        var release = Some.Release();
        await Some.LiveDeploymentAsync(_store, "d-live", "analytics", release);
        await _store.CreateDeploymentAsync(Some.Deployment("d-b", "reports", release) with { Server = "server-b" }, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d-a", "analytics", release) with { Server = "server-a" }, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d-old", "analytics", release), CancellationToken.None);

        var pending = await _store.ListPendingDeploymentsAsync(CancellationToken.None);

        pending.Select(d => (d.Id, d.Server)).ShouldBe([("d-b", "server-b"), ("d-a", "server-a"), ("d-old", (string?)null)]);
        (await _store.GetDeploymentAsync("d-a", CancellationToken.None))!.Server.ShouldBe("server-a");
    }

    [Fact]
    public async Task HeartbeatServer_RecordsAServerOnce_AndMovesOnlyItsHeartbeat()
    {
        await _store.HeartbeatServerAsync("server-a", CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromSeconds(3));
        await _store.HeartbeatServerAsync("server-b", CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromSeconds(3));
        await _store.HeartbeatServerAsync("server-a", CancellationToken.None);

        (await _store.ListServersAsync(CancellationToken.None)).ShouldBe(
        [
            new ServerRecord("server-a", Some.Time, Some.Time.AddSeconds(6)),
            new ServerRecord("server-b", Some.Time.AddSeconds(3), Some.Time.AddSeconds(3)),
        ]);
    }

    [Fact]
    public async Task AgentConnections_MoveWithTheAgent_AndOnlyTheHoldingServerForgetsOne()
    {
        await _store.AgentConnectedAsync("worker-1", "server-a", CancellationToken.None);
        await _store.AgentConnectedAsync("worker-2", "server-a", CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromSeconds(1));

        // worker-1 reconnects through server-b before server-a notices it left.
        await _store.AgentConnectedAsync("worker-1", "server-b", CancellationToken.None);
        var staleForget = await _store.AgentDisconnectedAsync("worker-1", "server-a", CancellationToken.None);
        var forget = await _store.AgentDisconnectedAsync("worker-2", "server-a", CancellationToken.None);

        staleForget.ShouldBeFalse();
        forget.ShouldBeTrue();
        (await _store.ListAgentConnectionsAsync(CancellationToken.None)).ShouldBe([new AgentConnection("worker-1", "server-b", Some.Time.AddSeconds(1))]);
    }

    [Fact]
    public async Task ReplacePlacement_ChangesOnlyWhatItExpects_AndListsAgentsInNameOrder()
    {
        var first = await _store.ReplacePlacementAsync("analytics", [], ["worker-2", "worker-1"], CancellationToken.None);
        var stale = await _store.ReplacePlacementAsync("analytics", ["worker-1"], ["worker-3"], CancellationToken.None);
        var moved = await _store.ReplacePlacementAsync("analytics", ["worker-1", "worker-2"], ["worker-3", "worker-2"], CancellationToken.None);
        await _store.ReplacePlacementAsync("reports", [], ["worker-1"], CancellationToken.None);
        var emptied = await _store.ReplacePlacementAsync("reports", ["worker-1"], [], CancellationToken.None);

        (first, stale, moved, emptied).ShouldBe((true, false, true, true));
        var placements = await _store.ListPlacementsAsync(CancellationToken.None);
        placements.Keys.ShouldBe(["analytics"]);
        placements["analytics"].ShouldBe(["worker-2", "worker-3"]);
    }

    [Fact]
    public async Task ReplacePlacement_FromServersRacingOnOnePlacement_LetsExactlyOneWin()
    {
        await _store.ReplacePlacementAsync("analytics", [], ["gone"], CancellationToken.None);
        var stores = new List<IMetadataStore> { _store };
        for (var i = 0; i < 3; i++)
        {
            stores.Add(await _database.OpenStoreAsync());
        }

        try
        {
            var won = await Task.WhenAll(stores.Select((store, i) => Task.Run(() => store.ReplacePlacementAsync("analytics", ["gone"], [$"worker-{i}"], CancellationToken.None))));

            won.Count(w => w).ShouldBe(1);
            (await _store.ListPlacementsAsync(CancellationToken.None))["analytics"].ShouldBe([$"worker-{Array.IndexOf(won, true)}"]);
        }
        finally
        {
            foreach (var store in stores.Skip(1))
            {
                await store.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task AgentProfiles_KeepLabelsCapacityLoadAndDraining_AcrossConnections()
    {
        await _store.RecordAgentAsync("worker-1", new Dictionary<string, string> { ["gpu"] = "h200", ["zone"] = "a" }, """{"cpus":8}""", CancellationToken.None);
        await _store.RecordAgentLoadAsync("worker-1", """{"runs":2}""", CancellationToken.None);
        var drained = await _store.SetAgentDrainingAsync("worker-1", true, CancellationToken.None);
        var unknown = await _store.SetAgentDrainingAsync("nobody", true, CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromSeconds(5));
        await _store.RecordAgentAsync("worker-1", new Dictionary<string, string> { ["gpu"] = "h200" }, """{"cpus":16}""", CancellationToken.None);

        (drained, unknown).ShouldBe((true, false));
        var profile = (await _store.ListAgentProfilesAsync(CancellationToken.None)).ShouldHaveSingleItem();
        profile.Name.ShouldBe("worker-1");
        profile.Labels.ShouldBe(new Dictionary<string, string> { ["gpu"] = "h200" });
        profile.CapacityJson.ShouldBe("""{"cpus":16}""");
        profile.LoadJson.ShouldBe("""{"runs":2}""");
        profile.Draining.ShouldBeTrue();
        profile.SeenAt.ShouldBe(Some.Time.AddSeconds(5));
    }
}

public sealed class SqliteCoordinationTests : CoordinationContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresCoordinationTests(PostgresServer server) : CoordinationContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
