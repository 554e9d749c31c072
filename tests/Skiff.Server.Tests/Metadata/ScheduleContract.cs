using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>The metadata contract for schedule ticks and pauses, run against each store by the classes below it.</summary>
public abstract class ScheduleContract : IAsyncLifetime
{
    private const string Schedule = "0 2 * * * Europe/Berlin";
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

    private static ScheduleTickRecord Tick(DateTimeOffset at, string server = "server-a", string job = "nightly") =>
        new("app", job, Schedule, at, Some.Time, server);

    [Fact]
    public async Task Of_many_servers_recording_one_tick_at_once_exactly_one_records_it()
    {
        await using var other = await _database.OpenStoreAsync();
        var stores = new[] { _store, other };

        var attempts = await Task.WhenAll(Enumerable.Range(0, 16).Select(i =>
            Task.Run(() => stores[i % 2].RecordScheduleTickAsync(Tick(Some.Time, $"server-{i}"), CancellationToken.None))));

        attempts.Count(recorded => recorded).ShouldBe(1);
        var newest = (await _store.ListLatestScheduleTicksAsync(null, CancellationToken.None)).ShouldHaveSingleItem();
        newest.TickAt.ShouldBe(Some.Time);
        attempts.Select((recorded, i) => (recorded, i)).Single(a => a.recorded).i.ShouldBe(int.Parse(newest.Server["server-".Length..], System.Globalization.CultureInfo.InvariantCulture));
        // The next tick, and the same tick of another job, are other keys.
        (await other.RecordScheduleTickAsync(Tick(Some.Time.AddDays(1)), CancellationToken.None)).ShouldBeTrue();
        (await other.RecordScheduleTickAsync(Tick(Some.Time, job: "weekly"), CancellationToken.None)).ShouldBeTrue();
        (await other.RecordScheduleTickAsync(Tick(Some.Time.AddDays(1)), CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task The_newest_tick_of_each_schedule_is_listed_and_ticks_long_before_it_are_forgotten()
    {
        await _store.RecordScheduleTickAsync(Tick(Some.Time), CancellationToken.None);
        await _store.RecordScheduleTickAsync(Tick(Some.Time.AddDays(20)), CancellationToken.None);
        await _store.RecordScheduleTickAsync(Tick(Some.Time.AddDays(1), job: "weekly") with { Location = "reports" }, CancellationToken.None);

        var newest = await _store.ListLatestScheduleTicksAsync(null, CancellationToken.None);
        newest.Select(t => (t.Location, t.Job, t.TickAt)).ShouldBe([("app", "nightly", Some.Time.AddDays(20)), ("reports", "weekly", Some.Time.AddDays(1))]);
        (await _store.ListLatestScheduleTicksAsync("reports", CancellationToken.None)).ShouldHaveSingleItem().Job.ShouldBe("weekly");

        // 31 days after the first: the first is forgotten, so recording it again succeeds; it is older than the newest.
        await _store.RecordScheduleTickAsync(Tick(Some.Time.AddDays(31)), CancellationToken.None);
        (await _store.RecordScheduleTickAsync(Tick(Some.Time), CancellationToken.None)).ShouldBeTrue();
        (await _store.RecordScheduleTickAsync(Tick(Some.Time.AddDays(20)), CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task Completing_a_tick_records_its_run_and_stamps_the_run_started_by_its_schedule()
    {
        var release = Some.Release();
        await Some.LiveDeploymentAsync(_store, "d-1", "app", release);
        await _store.CreateRunAsync(Some.Run("r-1", "app", release), CancellationToken.None);
        var tick = Tick(Some.Time);
        await _store.RecordScheduleTickAsync(tick, CancellationToken.None);

        (await _store.CompleteScheduleTickAsync(tick, "r-1", "late", CancellationToken.None)).ShouldBeTrue();
        (await _store.CompleteScheduleTickAsync(tick with { TickAt = Some.Time.AddHours(1) }, "r-2", null, CancellationToken.None)).ShouldBeFalse();

        var newest = (await _store.ListLatestScheduleTicksAsync("app", CancellationToken.None)).ShouldHaveSingleItem();
        newest.Run.ShouldBe("r-1");
        newest.Note.ShouldBe("late");
        (await _store.GetRunAsync("r-1", CancellationToken.None))!.StartedBy.ShouldBe("schedule:nightly");
        (await _store.ListRunsAsync("app", 10, CancellationToken.None)).ShouldHaveSingleItem().StartedBy.ShouldBe("schedule:nightly");
    }

    [Fact]
    public async Task Pausing_keeps_the_first_pause_and_resuming_stamps_when()
    {
        (await _store.ListScheduleStatesAsync(null, CancellationToken.None)).ShouldBeEmpty();

        await _store.SetSchedulePausedAsync("app", "nightly", paused: true, CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromMinutes(5));
        await _store.SetSchedulePausedAsync("app", "nightly", paused: true, CancellationToken.None);
        await _store.SetSchedulePausedAsync("app", "weekly", paused: false, CancellationToken.None); // never paused: nothing to resume

        var paused = (await _store.ListScheduleStatesAsync(null, CancellationToken.None)).ShouldHaveSingleItem();
        paused.ShouldBe(new ScheduleStateRecord("app", "nightly", Some.Time, null));

        _database.Clock.Advance(TimeSpan.FromMinutes(5));
        await _store.SetSchedulePausedAsync("app", "nightly", paused: false, CancellationToken.None);

        var resumed = (await _store.ListScheduleStatesAsync("app", CancellationToken.None)).ShouldHaveSingleItem();
        resumed.Paused.ShouldBeFalse();
        resumed.ResumedAt.ShouldBe(Some.Time.AddMinutes(10));
        (await _store.ListScheduleStatesAsync("other", CancellationToken.None)).ShouldBeEmpty();
    }
}

public sealed class SqliteScheduleTests : ScheduleContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresScheduleTests(PostgresServer server) : ScheduleContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
