using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>The metadata contract under calls made at once, run against each store by the classes below it.</summary>
public abstract class ConcurrencyContract : IAsyncLifetime
{
    private readonly ReleaseRecord _release = Some.Release();
    private IContractDatabase _database = null!;
    private IMetadataStore _store = null!;

    public async Task InitializeAsync()
    {
        _database = await CreateDatabaseAsync();
        _store = await _database.OpenStoreAsync();
        await _store.RegisterReleaseAsync(_release, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _database.DisposeAsync();
    }

    private protected abstract Task<IContractDatabase> CreateDatabaseAsync();

    [Fact]
    public async Task DeploymentsCreatedAndCompletedFromManyTasksAtOnce_AllLand()
    {
        // Task.Run: the store's calls finish synchronously, so without it they would not overlap.
        await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(async () =>
        {
            await _store.CreateDeploymentAsync(Some.Deployment($"d{i}", $"location-{i:D2}", _release), CancellationToken.None);
            await _store.ListLocationsAsync(CancellationToken.None);
            await _store.CompleteDeploymentAsync($"d{i}", DeploymentOutcomes.Live, null, $$"""{"i":{{i}}}""", null, new Dictionary<string, long>(), CancellationToken.None);
        })));

        (await _store.ListLocationsAsync(CancellationToken.None)).Select(l => (l.Name, l.LiveDeployment))
            .ShouldBe(Enumerable.Range(0, 50).Select(i => ($"location-{i:D2}", (string?)$"d{i}")));
    }

    [Fact]
    public async Task RunEventsAppendedFromManyTasksAtOnce_AllLandOnce()
    {
        await _store.CreateDeploymentAsync(Some.Deployment("d1", "analytics", _release), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release), CancellationToken.None);

        // Every event twice, as a worker that reconnected would resend them.
        await Task.WhenAll(Enumerable.Range(1, 200).SelectMany(seq => new[] { seq, seq }).Select(seq => Task.Run(() =>
            _store.AppendRunEventAsync("r1", seq, $$"""{"n":{{seq}}}""", CancellationToken.None))));

        var events = await _store.GetRunEventsAsync("r1", 0, 1000, CancellationToken.None);
        events.Select(e => e.Seq).ShouldBe(Enumerable.Range(1, 200).Select(seq => (long)seq));
        events.ShouldAllBe(e => e.Json == "{\"n\":" + e.Seq + "}");
    }

    [Fact]
    public async Task TwoStoresOnOneDatabase_WritingAtOnce_AllLand()
    {
        // Two stores share no write queue or pool, so they contend inside the database, as two processes would.
        await using var other = await _database.OpenStoreAsync();

        await Task.WhenAll(Enumerable.Range(0, 60).Select(i => Task.Run(() =>
            (i % 2 == 0 ? _store : other).CreateDeploymentAsync(Some.Deployment($"d{i}", "analytics", _release, Some.Time.AddSeconds(i)), CancellationToken.None))));

        (await _store.ListDeploymentsAsync("analytics", 100, CancellationToken.None)).Count.ShouldBe(60);
    }

    [Fact]
    public async Task OneDeploymentCompletedByTwoStoresAtOnce_ExactlyOneOutcomeStands()
    {
        await using var other = await _database.OpenStoreAsync();
        for (var i = 0; i < 10; i++)
        {
            await _store.CreateDeploymentAsync(Some.Deployment($"d{i}", $"location-{i}", _release), CancellationToken.None);
        }

        // Each deployment is completed live by one store and failed by the other, at once.
        var attempts = Enumerable.Range(0, 10).SelectMany(i => new[]
        {
            Task.Run(() => Attempt(_store, $"d{i}", DeploymentOutcomes.Live)),
            Task.Run(() => Attempt(other, $"d{i}", DeploymentOutcomes.Failed)),
        });
        var results = await Task.WhenAll(attempts);

        results.Count(won => won).ShouldBe(10);
        for (var i = 0; i < 10; i++)
        {
            var deployment = await other.GetDeploymentAsync($"d{i}", CancellationToken.None);
            var location = await _store.GetLocationAsync($"location-{i}", CancellationToken.None);
            location!.LiveDeployment.ShouldBe(deployment!.Outcome == DeploymentOutcomes.Live ? $"d{i}" : null);
        }

        static async Task<bool> Attempt(IMetadataStore store, string id, string outcome)
        {
            try
            {
                await store.CompleteDeploymentAsync(id, outcome, outcome == DeploymentOutcomes.Failed ? "lost the race" : null, "{}", null, new Dictionary<string, long>(), CancellationToken.None);
                return true;
            }
            catch (MetadataConflictException)
            {
                return false;
            }
        }
    }
}

public sealed class SqliteConcurrencyTests : ConcurrencyContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresConcurrencyTests(PostgresServer server) : ConcurrencyContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
