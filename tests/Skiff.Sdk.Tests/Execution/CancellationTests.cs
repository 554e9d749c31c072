using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;

namespace Skiff.Sdk.Tests.Execution;

public sealed class CancellationTests
{
    [Fact]
    public async Task CancelingARun_CancelsTheRunningOp_SkipsItsDependents_AndEndsCanceled()
    {
        var job = Some.Job(j => j
            .Op("quick", _ => Task.CompletedTask)
            .Op("long", context => Task.Delay(Timeout.Infinite, context.CancellationToken))
            .Op("after", _ => Task.CompletedTask, dependsOn: ["long"])
            .Op("last", _ => Task.CompletedTask, dependsOn: ["after", "quick"]));
        using var run = TestRun.Start(job);

        await run.Events.WaitForAsync(EventTypes.OpStarted, "long");
        await run.Events.WaitForAsync(EventTypes.OpSucceeded, "quick");
        await run.Cancellation.CancelAsync();

        (await run.EndAsync()).ShouldBe(RunOutcome.Canceled);
        var canceled = run.Events.Single(EventTypes.OpCanceled, "long");
        canceled.Attempt.ShouldBe(1);
        canceled.DurationMs.ShouldNotBeNull();
        run.Events.Single(EventTypes.OpSkipped, "after").Reason.ShouldBe("dependency 'long' canceled");
        run.Events.Single(EventTypes.OpSkipped, "last").Reason.ShouldBe("dependency 'after' skipped");
        var terminal = run.Events.All[^1];
        terminal.Type.ShouldBe(EventTypes.RunCanceled);
        terminal.Reason.ShouldBe("the run was canceled");
        run.Events.All.Count(e => EventTypes.EndsRun(e.Type)).ShouldBe(1);
    }

    [Fact]
    public async Task ARunCanceledBeforeItStarts_SkipsEveryOp()
    {
        var ran = false;
        var job = Some.Job(j => j
            .Op("a", _ =>
            {
                ran = true;
                return Task.CompletedTask;
            })
            .Op("b", _ => Task.CompletedTask, dependsOn: ["a"]));
        var events = new EventLog();
        using var canceled = new CancellationTokenSource();
        await canceled.CancelAsync();

        var outcome = await new RunExecutor(TimeProvider.System)
            .ExecuteAsync(job, job.Bind(Some.NoParameters()), null, new RunEventStream("r", TimeProvider.System, events.Add), canceled.Token)
            .WaitAsync(TestRun.Deadline);

        outcome.ShouldBe(RunOutcome.Canceled);
        ran.ShouldBeFalse();
        events.Types.ShouldBe([EventTypes.RunStarted, EventTypes.OpSkipped, EventTypes.OpSkipped, EventTypes.RunCanceled]);
        events.Single(EventTypes.OpSkipped, "a").Reason.ShouldBe("the run was canceled");
        events.Single(EventTypes.OpSkipped, "b").Reason.ShouldBe("dependency 'a' skipped");
    }

    [Fact]
    public async Task AnOpThatFailsWhileOthersAreCanceled_MakesTheRunFailed()
    {
        var job = Some.Job(j => j
            .Op("long", context => Task.Delay(Timeout.Infinite, context.CancellationToken))
            .Op("broken", async context =>
            {
                await Task.Delay(Timeout.Infinite, context.CancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
                throw new InvalidOperationException("cleanup failed");
            }));
        using var run = TestRun.Start(job);

        await run.Events.WaitForAsync(EventTypes.OpStarted, "long");
        await run.Events.WaitForAsync(EventTypes.OpStarted, "broken");
        await run.Cancellation.CancelAsync();

        (await run.EndAsync()).ShouldBe(RunOutcome.Failed);
        run.Events.Single(EventTypes.OpCanceled, "long");
        run.Events.Single(EventTypes.OpFailed, "broken").Error!.Message.ShouldBe("cleanup failed");
        run.Events.All[^1].Reason.ShouldBe("op 'broken' failed: cleanup failed");
    }
}
