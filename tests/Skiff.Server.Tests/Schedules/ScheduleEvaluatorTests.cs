using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;
using Skiff.Server.Metadata;
using Skiff.Server.Schedules;
using Skiff.Server.Tests.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Schedules;

/// <summary>
/// The evaluator on real stores, its time driven by one fake clock: one run per tick with several servers, missed ticks
/// after a restart, pauses. Runs are started by a collecting fake at the run-starting boundary.
/// </summary>
[Collection(PostgresServer.Collection)]
public sealed class ScheduleEvaluatorTests(PostgresServer postgres) : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private readonly FakeTimeProvider _time = new(Scheduled.At("2026-11-29T00:00:00Z"));
    private readonly TestDatabase _sqlite = new();
    private readonly ConcurrentQueue<(string Job, DateTimeOffset Tick, string Params)> _runs = new();
    private readonly List<IAsyncDisposable> _open = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var open in Enumerable.Reverse(_open))
        {
            await open.DisposeAsync();
        }

        _sqlite.Dispose();
    }

    [Fact]
    public async Task Two_evaluators_on_one_PostgreSQL_database_passing_at_once_start_one_run_per_tick()
    {
        var database = await PostgresTestDatabase.CreateAsync(postgres);
        var first = await OpenAsync(() => PostgresMetadataStore.OpenAsync(database.ConnectionString, _time, CancellationToken.None));
        var second = await OpenAsync(() => PostgresMetadataStore.OpenAsync(database.ConnectionString, _time, CancellationToken.None));
        await Scheduled.DeployAsync(first, Scheduled.Definitions("0 * * * *"));
        var a = Evaluator(first, "server-a");
        var b = Evaluator(second, "server-b");

        for (var hour = 1; hour <= 3; hour++)
        {
            _time.SetUtcNow(Scheduled.At($"2026-11-29T0{hour}:00:00Z"));
            var started = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => (i % 2 == 0 ? a : b).EvaluateOnceAsync(CancellationToken.None)));
            started.Sum(runs => runs.Count).ShouldBe(1, $"tick {hour}:00");
        }

        _runs.Select(r => r.Tick.Hour).ShouldBe([1, 2, 3]);
        _runs.ShouldAllBe(r => r.Job == "nightly" && r.Params == """{"day":"yesterday"}""");
    }

    [Fact]
    public async Task Two_servers_running_on_one_fake_clock_start_each_tick_once_as_their_clock_reaches_it()
    {
        var database = await PostgresTestDatabase.CreateAsync(postgres);
        var first = await OpenAsync(() => PostgresMetadataStore.OpenAsync(database.ConnectionString, _time, CancellationToken.None));
        var second = await OpenAsync(() => PostgresMetadataStore.OpenAsync(database.ConnectionString, _time, CancellationToken.None));
        await Scheduled.DeployAsync(first, Scheduled.Definitions("*/10 * * * *"));
        await StartAsync(Evaluator(first, "server-a"));
        await StartAsync(Evaluator(second, "server-b"));

        for (var tick = 1; tick <= 3; tick++)
        {
            _time.SetUtcNow(Scheduled.At("2026-11-29T00:00:00Z").AddMinutes(10 * tick).AddSeconds(-2));
            await AdvanceUntilAsync(() => Task.FromResult(_runs.Count >= tick));
        }

        // Both go on evaluating past the last tick; neither starts it again.
        var later = _time.GetUtcNow().AddSeconds(5);
        await AdvanceUntilAsync(() => Task.FromResult(_time.GetUtcNow() >= later));

        _runs.Select(r => r.Tick.Minute).ShouldBe([10, 20, 30]);
        (await first.ListLatestScheduleTicksAsync("app", CancellationToken.None)).ShouldHaveSingleItem().TickAt.ShouldBe(Scheduled.At("2026-11-29T00:30:00Z"));
    }

    [Theory]
    [InlineData("skip")]
    [InlineData("run_once")]
    public async Task After_a_restart_across_missed_ticks_the_policy_decides_whether_one_run_stands_for_them(string missed)
    {
        var store = await OpenAsync(() => SqliteMetadataStore.OpenAsync(_sqlite.Path, _time, CancellationToken.None));
        await Scheduled.DeployAsync(store, Scheduled.Definitions("0 * * * *", missed: missed));
        var before = Evaluator(store, "server-before");
        await before.StartAsync(CancellationToken.None);
        _time.SetUtcNow(Scheduled.At("2026-11-29T00:59:59Z"));
        await AdvanceUntilAsync(() => Task.FromResult(_runs.Count == 1));
        await before.StopAsync(CancellationToken.None);

        // Down from 01:00 to 04:30: the ticks at 02:00, 03:00 and 04:00 came due with no server to see them.
        _time.SetUtcNow(Scheduled.At("2026-11-29T04:30:00Z"));
        var restarted = await OpenAsync(() => SqliteMetadataStore.OpenAsync(_sqlite.Path, _time, CancellationToken.None));
        await StartAsync(Evaluator(restarted, "server-after"));
        await WaitUntilAsync(async () => (await restarted.ListLatestScheduleTicksAsync("app", CancellationToken.None)).Single().TickAt == Scheduled.At("2026-11-29T04:00:00Z"));
        var caughtUp = (await restarted.ListLatestScheduleTicksAsync("app", CancellationToken.None)).Single();
        if (missed == "skip")
        {
            caughtUp.Run.ShouldBeNull();
            caughtUp.Note.ShouldNotBeNull().ShouldContain("missed: no server ran at 2026-11-29 04:00:00Z (nor at earlier ticks)");
            _runs.Count.ShouldBe(1);
        }
        else
        {
            await WaitUntilAsync(() => _runs.Count == 2);
            _runs.Last().Tick.ShouldBe(Scheduled.At("2026-11-29T04:00:00Z"));
        }

        // Either way the schedule goes on with the next tick.
        var runsBefore = _runs.Count;
        _time.SetUtcNow(Scheduled.At("2026-11-29T04:59:59Z"));
        await AdvanceUntilAsync(() => Task.FromResult(_runs.Count == runsBefore + 1));
        _runs.Last().Tick.ShouldBe(Scheduled.At("2026-11-29T05:00:00Z"));
    }

    [Fact]
    public async Task A_paused_schedule_starts_nothing_and_once_resumed_never_runs_the_ticks_of_its_pause()
    {
        var store = await OpenAsync(() => SqliteMetadataStore.OpenAsync(_sqlite.Path, _time, CancellationToken.None));
        await Scheduled.DeployAsync(store, Scheduled.Definitions("0 * * * *", missed: "run_once"));
        var evaluator = Evaluator(store, "server-a");
        await store.SetSchedulePausedAsync("app", "nightly", paused: true, CancellationToken.None);

        _time.SetUtcNow(Scheduled.At("2026-11-29T01:00:00Z"));
        (await evaluator.EvaluateOnceAsync(CancellationToken.None)).ShouldBeEmpty();
        _time.SetUtcNow(Scheduled.At("2026-11-29T02:30:00Z"));
        await store.SetSchedulePausedAsync("app", "nightly", paused: false, CancellationToken.None);
        (await evaluator.EvaluateOnceAsync(CancellationToken.None)).ShouldBeEmpty();

        _time.SetUtcNow(Scheduled.At("2026-11-29T03:00:00Z"));
        (await evaluator.EvaluateOnceAsync(CancellationToken.None)).ShouldHaveSingleItem();
        _runs.ShouldHaveSingleItem().Tick.ShouldBe(Scheduled.At("2026-11-29T03:00:00Z"));
    }

    [Fact]
    public async Task A_run_that_cannot_start_leaves_its_reason_on_the_tick_and_is_not_tried_again()
    {
        var store = await OpenAsync(() => SqliteMetadataStore.OpenAsync(_sqlite.Path, _time, CancellationToken.None));
        await Scheduled.DeployAsync(store, Scheduled.Definitions("0 * * * *"));
        var attempts = 0;
        var evaluator = new ScheduleEvaluator(
            store,
            (_, _, _) =>
            {
                attempts++;
                throw new InvalidOperationException("no agent hosts location 'app'");
            },
            "server-a",
            _time);

        _time.SetUtcNow(Scheduled.At("2026-11-29T01:00:00Z"));
        (await evaluator.EvaluateOnceAsync(CancellationToken.None)).ShouldBeEmpty();
        (await evaluator.EvaluateOnceAsync(CancellationToken.None)).ShouldBeEmpty();

        attempts.ShouldBe(1);
        var tick = (await store.ListLatestScheduleTicksAsync("app", CancellationToken.None)).ShouldHaveSingleItem();
        tick.Run.ShouldBeNull();
        tick.Note.ShouldBe("the run could not start: no agent hosts location 'app'");
    }

    [Fact]
    public async Task A_deploy_that_drops_the_schedule_stops_it_and_a_tick_before_the_release_went_live_is_not_run()
    {
        var store = await OpenAsync(() => SqliteMetadataStore.OpenAsync(_sqlite.Path, _time, CancellationToken.None));
        _time.SetUtcNow(Scheduled.At("2026-11-29T01:30:00Z"));
        await Scheduled.DeployAsync(store, Scheduled.Definitions("0 * * * *", missed: "run_once"));
        var evaluator = Evaluator(store, "server-a");
        (await evaluator.EvaluateOnceAsync(CancellationToken.None)).ShouldBeEmpty(); // 01:00 was before it went live

        await Scheduled.DeployAsync(store, Scheduled.Definitions("0 * * * *", job: "other") .Replace("\"schedules\"", "\"unscheduled\"", StringComparison.Ordinal), "d-2");
        _time.SetUtcNow(Scheduled.At("2026-11-29T02:00:00Z"));
        (await evaluator.EvaluateOnceAsync(CancellationToken.None)).ShouldBeEmpty();
        _runs.ShouldBeEmpty();
    }

    private ScheduleEvaluator Evaluator(IMetadataStore store, string server) =>
        new(
            store,
            (schedule, tick, _) =>
            {
                _runs.Enqueue((schedule.Job, tick, schedule.Parameters.ToJsonString()));
                return Task.FromResult($"r-{server}-{tick:HHmm}");
            },
            server,
            _time);

    private async Task<T> OpenAsync<T>(Func<Task<T>> open)
        where T : IAsyncDisposable
    {
        var opened = await open();
        _open.Add(opened);
        return opened;
    }

    private async Task StartAsync(ScheduleEvaluator evaluator)
    {
        await evaluator.StartAsync(CancellationToken.None);
        _open.Add(new Stopping(evaluator));
    }

    private static async Task WaitUntilAsync(Func<bool> condition) => await WaitUntilAsync(() => Task.FromResult(condition()));

    /// <summary>
    /// Moves the clock on a second at a time until <paramref name="condition"/> holds. An evaluator waits a second after
    /// each pass from the time the pass ended, which may be after a jump of the clock; the next second wakes it.
    /// </summary>
    private async Task AdvanceUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!await condition())
        {
            (DateTime.UtcNow < deadline).ShouldBeTrue("the condition did not come true in time");
            _time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(5, CancellationToken.None);
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!await condition())
        {
            (DateTime.UtcNow < deadline).ShouldBeTrue("the condition did not come true in time");
            await Task.Delay(5, CancellationToken.None);
        }
    }

    /// <summary>Stops a started evaluator when the test ends, before the stores it uses are closed.</summary>
    private sealed class Stopping(ScheduleEvaluator evaluator) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await evaluator.StopAsync(CancellationToken.None);
            evaluator.Dispose();
        }
    }
}
