using Skiff.Server.Metadata;

namespace Skiff.Server.Tests.Metadata;

public sealed class ConcurrencyTests : IAsyncLifetime
{
    private readonly TestDatabase _database = new();
    private readonly ReleaseRecord _release = Some.Release();
    private SqliteMetadataStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = await _database.OpenAsync();
        await _store.RegisterReleaseAsync(_release, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _database.Dispose();
    }

    [Fact]
    public async Task DeploymentsCreatedAndCompletedFromManyTasksAtOnce_AllLand()
    {
        // Task.Run: the store's calls finish synchronously, so without it they would not overlap.
        await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(async () =>
        {
            await _store.CreateDeploymentAsync(Some.Deployment($"d{i}", $"location-{i:D2}", _release), CancellationToken.None);
            await _store.ListLocationsAsync(CancellationToken.None);
            await _store.CompleteDeploymentAsync($"d{i}", DeploymentOutcomes.Live, null, $$"""{"i":{{i}}}""", new Dictionary<string, long>(), CancellationToken.None);
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
    public async Task TwoStoresOnOneFile_WritingAtOnce_WaitForEachOthersLocks()
    {
        // Two stores share no write queue, so they contend inside SQLite, as two processes would.
        await using var other = await _database.OpenAsync();

        await Task.WhenAll(Enumerable.Range(0, 60).Select(i => Task.Run(() =>
            (i % 2 == 0 ? _store : other).CreateDeploymentAsync(Some.Deployment($"d{i}", "analytics", _release, Some.Time.AddSeconds(i)), CancellationToken.None))));

        (await _store.ListDeploymentsAsync("analytics", 100, CancellationToken.None)).Count.ShouldBe(60);
    }
}
