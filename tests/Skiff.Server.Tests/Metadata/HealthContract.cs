using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>The metadata contract for a location's health history, run against each store by the classes below it.</summary>
public abstract class HealthContract : IAsyncLifetime
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

    private static LocationHealthRecord Report(string location, int i, string kind = "Crashed") =>
        new(location, "agent-a", "sha256:" + new string('a', 64), kind, $"report {i}", Some.Time.AddSeconds(i));

    [Fact]
    public async Task Reports_are_listed_newest_first_per_location_and_outlive_the_store()
    {
        await _store.AppendLocationHealthAsync(Report("app", 1, "Activated"), CancellationToken.None);
        await _store.AppendLocationHealthAsync(Report("other", 2), CancellationToken.None);
        // Appended in the order the server heard them, which an agent's clock need not agree with.
        await _store.AppendLocationHealthAsync(Report("app", 3) with { At = Some.Time }, CancellationToken.None);
        await _store.AppendLocationHealthAsync(Report("app", 4, "Restarted"), CancellationToken.None);

        await using var reopened = await _database.OpenStoreAsync();
        var history = await reopened.ListLocationHealthAsync("app", 10, CancellationToken.None);

        history.Select(r => (r.Kind, r.Message)).ShouldBe([("Restarted", "report 4"), ("Crashed", "report 3"), ("Activated", "report 1")]);
        history[1].ShouldBe(Report("app", 3) with { At = Some.Time });
        (await reopened.ListLocationHealthAsync("app", 2, CancellationToken.None)).Select(r => r.Message).ShouldBe(["report 4", "report 3"]);
        (await reopened.ListLocationHealthAsync("other", 10, CancellationToken.None)).ShouldHaveSingleItem().Message.ShouldBe("report 2");
        (await reopened.ListLocationHealthAsync("nowhere", 10, CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Only_the_newest_reports_of_each_location_are_kept()
    {
        var kept = IMetadataStore.KeptHealthReportsPerLocation;
        for (var i = 1; i <= kept + 5; i++)
        {
            await _store.AppendLocationHealthAsync(Report("flapping", i), CancellationToken.None);
        }

        await _store.AppendLocationHealthAsync(Report("calm", 1), CancellationToken.None);

        var history = await _store.ListLocationHealthAsync("flapping", kept + 50, CancellationToken.None);
        history.Count.ShouldBe(kept);
        history[0].Message.ShouldBe($"report {kept + 5}");
        history[^1].Message.ShouldBe("report 6");
        (await _store.ListLocationHealthAsync("calm", 10, CancellationToken.None)).ShouldHaveSingleItem();
    }

    [Fact]
    public async Task A_report_appended_only_while_its_agents_newest_on_its_release_is_of_a_kind_is_appended_once_by_servers_racing_and_not_after_another()
    {
        await _store.AppendLocationHealthAsync(Report("pool", 1, "Draining"), CancellationToken.None);
        // Another agent's newer report on the release is its own: it does not stand in the way.
        await _store.AppendLocationHealthAsync(Report("pool", 2, "Draining") with { Agent = "agent-b" }, CancellationToken.None);
        var stores = new List<IMetadataStore> { _store };
        for (var i = 0; i < 3; i++)
        {
            stores.Add(await _database.OpenStoreAsync());
        }

        try
        {
            // Every server giving up on agent-a records its drain ended: one of them does.
            var appended = await Task.WhenAll(stores.Select(store => Task.Run(() => store.AppendLocationHealthIfNewestIsAsync(Report("pool", 3, "Stopped"), "Draining", CancellationToken.None))));

            appended.Count(a => a).ShouldBe(1);
        }
        finally
        {
            foreach (var store in stores.Skip(1))
            {
                await store.DisposeAsync();
            }
        }

        var otherRelease = Report("pool", 4, "Stopped") with { Release = "sha256:" + new string('b', 64) };
        (await _store.AppendLocationHealthIfNewestIsAsync(otherRelease, "Draining", CancellationToken.None)).ShouldBeFalse("agent-a reported nothing on that release");
        (await _store.ListLocationHealthAsync("pool", 10, CancellationToken.None)).Select(r => (r.Agent, r.Kind, r.Message))
            .ShouldBe([("agent-a", "Stopped", "report 3"), ("agent-b", "Draining", "report 2"), ("agent-a", "Draining", "report 1")]);
    }
}

public sealed class SqliteHealthTests : HealthContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresHealthTests(PostgresServer server) : HealthContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
