using System.Diagnostics;
using Skiff.Sdk.Events;

namespace Skiff.Sdk.Tests.Execution;

/// <summary><see cref="OpContext.ReportProgress"/>: throttled to one event per 100 ms, the last value always sent.</summary>
public sealed class ProgressTests
{
    [Fact]
    public async Task ATightLoop_SendsTheFirstReport_AndTheLastOneWhenTheOpEnds()
    {
        var time = new ManualTimeProvider();
        var job = Some.Job(j => j.Op("load", context =>
        {
            for (var i = 0; i < 1000; i++)
            {
                context.ReportProgress(i / 1000.0, $"item {i}");
            }

            return Task.CompletedTask;
        }));

        using var run = TestRun.Start(job, time);
        await run.EndAsync();

        var progress = run.Events.OfType(EventTypes.Progress, "load");
        progress.Select(e => (e.Fraction, e.Message)).ShouldBe([(0.0, "item 0"), (0.999, "item 999")]);
        Index(run, progress[^1]).ShouldBeLessThan(Index(run, run.Events.Single(EventTypes.OpSucceeded)));
    }

    [Fact]
    public async Task AReportAfterTheIntervalPassed_IsSentAtOnce_AndHeldBackValuesAreSuperseded()
    {
        var time = new ManualTimeProvider();
        var sentAtOnce = new List<int>();
        var log = new TaskCompletionSource<EventLog>(TaskCreationOptions.RunContinuationsAsynchronously);
        var job = Some.Job(j => j.Op("load", async context =>
        {
            var events = await log.Task;
            context.ReportProgress(0.1);
            sentAtOnce.Add(events.OfType(EventTypes.Progress).Count);
            context.ReportProgress(0.2);
            sentAtOnce.Add(events.OfType(EventTypes.Progress).Count);
            time.Advance(TimeSpan.FromMilliseconds(99));
            context.ReportProgress(0.3);
            sentAtOnce.Add(events.OfType(EventTypes.Progress).Count);
            time.Advance(TimeSpan.FromMilliseconds(1));
            context.ReportProgress(0.4);
            sentAtOnce.Add(events.OfType(EventTypes.Progress).Count);
        }));

        using var run = TestRun.Start(job, time);
        log.SetResult(run.Events);
        await run.EndAsync();

        sentAtOnce.ShouldBe([1, 1, 1, 2]);
        run.Events.OfType(EventTypes.Progress).Select(e => e.Fraction).ShouldBe([0.1, 0.4]);
    }

    [Fact]
    public async Task Completion_IsSentAtOnce_EvenWithinTheInterval()
    {
        var time = new ManualTimeProvider();
        var sentAtOnce = -1;
        var log = new TaskCompletionSource<EventLog>(TaskCreationOptions.RunContinuationsAsynchronously);
        var job = Some.Job(j => j.Op("load", async context =>
        {
            var events = await log.Task;
            context.ReportProgress(0.5);
            context.ReportProgress(1, "done");
            // Sent before the op ends, not by the flush at its end.
            sentAtOnce = events.OfType(EventTypes.Progress).Count;
        }));

        using var run = TestRun.Start(job, time);
        log.SetResult(run.Events);
        await run.EndAsync();

        sentAtOnce.ShouldBe(2);
        run.Events.OfType(EventTypes.Progress).Select(e => (e.Fraction, e.Message)).ShouldBe([(0.5, null), (1.0, "done")]);
    }

    [Fact]
    public async Task Fractions_AreClampedToZeroAndOne()
    {
        var time = new ManualTimeProvider();
        var job = Some.Job(j => j.Op("load", context =>
        {
            context.ReportProgress(-0.5);
            time.Advance(TimeSpan.FromSeconds(1));
            context.ReportProgress(7);
            time.Advance(TimeSpan.FromSeconds(1));
            context.ReportProgress(double.PositiveInfinity);
            return Task.CompletedTask;
        }));

        using var run = TestRun.Start(job, time);
        await run.EndAsync();

        run.Events.OfType(EventTypes.Progress).Select(e => e.Fraction).ShouldBe([0.0, 1.0, 1.0]);
    }

    [Fact]
    public async Task NaN_IsRejected()
    {
        Exception? thrown = null;
        var job = Some.Job(j => j.Op("load", context =>
        {
            thrown = Record.Exception(() => context.ReportProgress(double.NaN));
            return Task.CompletedTask;
        }));

        using var run = await TestRun.CompleteAsync(job);

        thrown.ShouldBeOfType<ArgumentOutOfRangeException>().ParamName.ShouldBe("fraction");
        run.Events.OfType(EventTypes.Progress).ShouldBeEmpty();
    }

    [Fact]
    public async Task AHeldBackValue_IsSentBeforeTheOpFails()
    {
        var time = new ManualTimeProvider();
        var job = Some.Job(j => j.Op("load", context =>
        {
            context.ReportProgress(0.1);
            context.ReportProgress(0.6, "row 600");
            throw new InvalidDataException("row 601");
        }));

        using var run = TestRun.Start(job, time);
        await run.EndAsync();

        var progress = run.Events.OfType(EventTypes.Progress);
        progress.Select(e => e.Fraction).ShouldBe([0.1, 0.6]);
        Index(run, progress[^1]).ShouldBeLessThan(Index(run, run.Events.Single(EventTypes.OpFailed)));
    }

    [Fact]
    public async Task WithTheSystemClock_ATightLoopSendsAtMostOneEventPerInterval()
    {
        const int Calls = 100_000;
        var elapsed = TimeSpan.Zero;
        var job = Some.Job(j => j.Op("load", context =>
        {
            var stopwatch = Stopwatch.StartNew();
            for (var i = 1; i <= Calls; i++)
            {
                context.ReportProgress(i / (double)(Calls + 1));
            }

            elapsed = stopwatch.Elapsed;
            return Task.CompletedTask;
        }));

        using var run = await TestRun.CompleteAsync(job);

        var progress = run.Events.OfType(EventTypes.Progress);
        progress.Count.ShouldBeLessThanOrEqualTo(2 + (int)(elapsed.TotalMilliseconds / 100));
        progress[^1].Fraction.ShouldBe(Calls / (double)(Calls + 1));
    }

    private static int Index(TestRun run, RunEvent e) => run.Events.All.ToList().FindIndex(x => x.Seq == e.Seq);
}
