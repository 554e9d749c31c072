using Skiff.Core;
using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>The metadata contract for releases, run against each store by the classes below it.</summary>
public abstract class ReleaseContract : IAsyncLifetime
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
    public async Task RegisterRelease_RoundTrips()
    {
        var release = Some.Release() with { SdkVersion = null };

        (await _store.RegisterReleaseAsync(release, CancellationToken.None)).ShouldBeTrue();

        (await _store.GetReleaseAsync(release.Id, CancellationToken.None)).ShouldBe(release);
        (await _store.GetReleaseAsync(Some.Digest("unknown"), CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task RegisterRelease_Again_IsHarmlessAndKeepsTheFirstRegistrationTime()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);

        (await _store.RegisterReleaseAsync(release with { RegisteredAt = Some.Time.AddDays(1) }, CancellationToken.None)).ShouldBeFalse();

        (await _store.GetReleaseAsync(release.Id, CancellationToken.None))!.RegisteredAt.ShouldBe(Some.Time);
    }

    [Fact]
    public async Task RegisterRelease_SameIdWithOtherContents_IsRefused()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);

        var refused = await Should.ThrowAsync<MetadataConflictException>(
            _store.RegisterReleaseAsync(release with { Source = Some.Digest("other source") }, CancellationToken.None));

        refused.Message.ShouldContain(release.Id.ToString());
        (await _store.GetReleaseAsync(release.Id, CancellationToken.None)).ShouldBe(release);
    }

    [Fact]
    public async Task IsEnvironmentRegistered_SaysWhetherAnyRegisteredReleaseUsesIt()
    {
        var release = Some.Release("with its environment");
        var before = await _store.IsEnvironmentRegisteredAsync(release.Environment, CancellationToken.None);
        await _store.RegisterReleaseAsync(release, CancellationToken.None);

        before.ShouldBeFalse();
        (await _store.IsEnvironmentRegisteredAsync(release.Environment, CancellationToken.None)).ShouldBeTrue();
        (await _store.IsEnvironmentRegisteredAsync(Some.Digest("an environment no release uses"), CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task ListReferencedReleases_KeepsLiveRecentPendingAndRunningReleases()
    {
        // analytics: 12 deployments; the oldest is live, the rest failed. Only the 10 newest count as
        // recent, so the second oldest (r1) is the one release there nothing refers to.
        var releases = Enumerable.Range(0, 12).Select(i => Some.Release($"r{i}")).ToArray();
        await Some.LiveDeploymentAsync(_store, "a0", "analytics", releases[0]);
        for (var i = 1; i < releases.Length; i++)
        {
            await _store.RegisterReleaseAsync(releases[i], CancellationToken.None);
            await _store.CreateDeploymentAsync(Some.Deployment($"a{i}", "analytics", releases[i], Some.Time.AddMinutes(i)), CancellationToken.None);
            await _store.CompleteDeploymentAsync($"a{i}", DeploymentOutcomes.Failed, "failed", null, null, new Dictionary<string, long>(), CancellationToken.None);
        }

        var pending = Some.Release("pending");
        await _store.RegisterReleaseAsync(pending, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("b0", "reports", pending), CancellationToken.None);
        var unused = Some.Release("never deployed");
        await _store.RegisterReleaseAsync(unused, CancellationToken.None);

        HashSet<Digest> expected = [releases[0].Id, .. releases[2..].Select(r => r.Id), pending.Id];
        (await _store.ListReferencedReleasesAsync(CancellationToken.None)).ShouldBe(expected, ignoreOrder: true);

        // A run pins its release for as long as it runs.
        await _store.CreateRunAsync(Some.Run("run1", "analytics", releases[1]), CancellationToken.None);
        (await _store.ListReferencedReleasesAsync(CancellationToken.None)).ShouldContain(releases[1].Id);
        await _store.CompleteRunAsync("run1", RunStatuses.Succeeded, null, CancellationToken.None);
        (await _store.ListReferencedReleasesAsync(CancellationToken.None)).ShouldBe(expected, ignoreOrder: true);
    }
}

public sealed class SqliteReleaseTests : ReleaseContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresReleaseTests(PostgresServer server) : ReleaseContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
