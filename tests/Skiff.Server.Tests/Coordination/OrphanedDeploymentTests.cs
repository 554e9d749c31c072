using Skiff.Core.Blobs;
using Skiff.Server.Agents;
using Skiff.Server.Coordination;
using Skiff.Server.Deployments;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;
using Skiff.Server.Tests.Metadata;

namespace Skiff.Server.Tests.Coordination;

/// <summary>How a server fails the deployments other servers left pending, judged by their heartbeats on the store's clock.</summary>
public sealed class OrphanedDeploymentTests : IAsyncLifetime
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(10);
    private readonly TestDatabase _database = new();
    private IMetadataStore _store = null!;
    private Deployer _deployer = null!;

    public async Task InitializeAsync()
    {
        _store = await _database.OpenAsync();
        var bus = new InProcessServerBus("server-me");
        var runs = new RunService(_store, bus, _database.Clock);
        var agents = new AgentHub(_store, runs, bus, TimeSpan.FromMinutes(3), TimeSpan.FromMinutes(1), Grace, _database.Clock, CancellationToken.None);
        _deployer = new Deployer(_store, new FileBlobStore(Path.Combine(_database.Folder, "blobs")), agents, bus, _database.Clock);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _database.Dispose();
    }

    [Fact]
    public async Task Deployments_of_a_server_silent_past_the_grace_period_are_failed_naming_it_and_those_of_live_servers_are_left()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);
        await _store.HeartbeatServerAsync("server-dead", CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d-dead", "analytics", release) with { Server = "server-dead" }, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d-unrecorded", "reports", release) with { Server = "server-never-beat" }, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d-live", "billing", release) with { Server = "server-live" }, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d-mine", "search", release) with { Server = "server-me" }, CancellationToken.None);
        _database.Clock.Advance(Grace + TimeSpan.FromSeconds(1));
        await _store.HeartbeatServerAsync("server-live", CancellationToken.None);

        var failed = await _deployer.FailOrphanedDeploymentsAsync(Grace, CancellationToken.None);

        failed.ShouldBe(2);
        var dead = (await _store.GetDeploymentAsync("d-dead", CancellationToken.None))!;
        dead.Outcome.ShouldBe(DeploymentOutcomes.Failed);
        dead.Error.ShouldBe("server 'server-dead', which drove this deployment, stopped before it finished (its last heartbeat was at 03:04:05 UTC, more than 10 s ago); deploy again");
        (await _store.GetDeploymentAsync("d-unrecorded", CancellationToken.None))!.Error.ShouldBe("the server that drove this deployment (server-never-beat) stopped before it finished; deploy again");
        (await _store.ListPendingDeploymentsAsync(CancellationToken.None)).Select(d => d.Id).ShouldBe(["d-live", "d-mine"]);
    }

    [Fact]
    public async Task A_server_within_the_grace_period_keeps_its_deployment_until_it_has_been_silent_for_longer()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);
        await _store.HeartbeatServerAsync("server-other", CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d-1", "analytics", release) with { Server = "server-other" }, CancellationToken.None);

        _database.Clock.Advance(Grace);
        var atTheLimit = await _deployer.FailOrphanedDeploymentsAsync(Grace, CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromMilliseconds(1));
        var pastIt = await _deployer.FailOrphanedDeploymentsAsync(Grace, CancellationToken.None);

        (atTheLimit, pastIt).ShouldBe((0, 1));
    }
}
