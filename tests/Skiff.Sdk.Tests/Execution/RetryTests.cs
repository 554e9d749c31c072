using Microsoft.Extensions.Logging;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;

namespace Skiff.Sdk.Tests.Execution;

/// <summary>Retries by an op's <see cref="RetryPolicy"/>, with time under the test's control.</summary>
public sealed class RetryTests
{
    [Fact]
    public async Task AnOpFailingTwice_IsRetriedAfterInitialDelayThenDoubleIt_AndSucceeds()
    {
        var time = new ManualTimeProvider();
        var calls = 0;
        var job = Some.Job(j => j.Op("flaky", context =>
        {
            context.Logger.LogInformation("trying");
            return ++calls < 3 ? Task.FromException(new IOException($"try {calls}")) : Task.FromResult(calls);
        }, retry: new RetryPolicy(3, TimeSpan.FromSeconds(10))));
        using var run = TestRun.Start(job, time);

        var first = await run.Events.WaitForAsync(EventTypes.OpRetrying, attempt: 1);
        await time.WaitForTimerAsync();
        time.PendingDelays().ShouldBe([TimeSpan.FromSeconds(10)]);
        time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromMilliseconds(1));
        run.Events.OfType(EventTypes.OpStarted).Count.ShouldBe(1, "the second attempt must wait the whole delay");
        time.Advance(TimeSpan.FromMilliseconds(1));

        var second = await run.Events.WaitForAsync(EventTypes.OpRetrying, attempt: 2);
        await time.WaitForTimerAsync();
        time.PendingDelays().ShouldBe([TimeSpan.FromSeconds(20)]);
        time.Advance(TimeSpan.FromSeconds(20));

        (await run.EndAsync()).ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
        first.Op.ShouldBe("flaky");
        first.DelayMs.ShouldBe(10_000);
        first.Error!.Type.ShouldBe("System.IO.IOException");
        first.Error.Message.ShouldBe("try 1");
        second.DelayMs.ShouldBe(20_000);
        second.Error!.Message.ShouldBe("try 2");
        run.Events.Types.ShouldBe([
            EventTypes.RunStarted,
            EventTypes.OpStarted, EventTypes.Log, EventTypes.OpRetrying,
            EventTypes.OpStarted, EventTypes.Log, EventTypes.OpRetrying,
            EventTypes.OpStarted, EventTypes.Log, EventTypes.OpSucceeded,
            EventTypes.RunSucceeded,
        ]);
        run.Events.OfType(EventTypes.OpStarted).Select(e => e.Attempt).ShouldBe([1, 2, 3]);
        run.Events.OfType(EventTypes.Log).Select(e => e.Attempt).ShouldBe([1, 2, 3]);
        run.Events.Single(EventTypes.OpSucceeded).Attempt.ShouldBe(3);
    }

    [Fact]
    public async Task Context_Attempt_CountsFromOne()
    {
        var seen = new List<int>();
        var job = Some.Job(j => j.Op("flaky", context =>
        {
            seen.Add(context.Attempt);
            return context.Attempt < 3 ? Task.FromException(new IOException("again")) : Task.CompletedTask;
        }, retry: new RetryPolicy(3, TimeSpan.FromMilliseconds(1))));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Succeeded);
        seen.ShouldBe([1, 2, 3]);
    }

    [Fact]
    public async Task AnOpThatKeepsFailing_FailsAfterItsLastAttempt()
    {
        var calls = 0;
        var job = Some.Job(j => j
            .Op("flaky", _ => Task.FromException(new IOException($"try {++calls}")), retry: new RetryPolicy(2, TimeSpan.FromMilliseconds(1)))
            .Op("after", _ => Task.CompletedTask, dependsOn: ["flaky"]));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Failed);
        calls.ShouldBe(2);
        run.Events.Single(EventTypes.OpRetrying, "flaky").Attempt.ShouldBe(1);
        var failed = run.Events.Single(EventTypes.OpFailed, "flaky");
        failed.Attempt.ShouldBe(2);
        failed.Error!.Message.ShouldBe("try 2");
        run.Events.Single(EventTypes.OpSkipped, "after").Reason.ShouldBe("dependency 'flaky' failed");
        run.Events.All[^1].Reason.ShouldBe("op 'flaky' failed: try 2");
    }

    [Fact]
    public async Task WithoutAPolicy_AnOpIsTriedOnce()
    {
        var calls = 0;
        var job = Some.Job(j => j.Op("once", _ => Task.FromException(new IOException($"try {++calls}"))));

        using var run = await TestRun.CompleteAsync(job);

        calls.ShouldBe(1);
        run.Events.OfType(EventTypes.OpRetrying).ShouldBeEmpty();
    }

    [Fact]
    public async Task Cancellation_IsNotRetried()
    {
        var job = Some.Job(j => j.Op("long", context => Task.Delay(Timeout.Infinite, context.CancellationToken), retry: new RetryPolicy(5, TimeSpan.Zero)));
        using var run = TestRun.Start(job);

        await run.Events.WaitForAsync(EventTypes.OpStarted, "long");
        await run.Cancellation.CancelAsync();

        (await run.EndAsync()).ShouldBe(RunOutcome.Canceled);
        run.Events.OfType(EventTypes.OpRetrying).ShouldBeEmpty();
        run.Events.Single(EventTypes.OpCanceled, "long").Attempt.ShouldBe(1);
    }

    [Fact]
    public async Task CancelingDuringARetryDelay_EndsTheOpAndTheRunCanceled()
    {
        var job = Some.Job(j => j
            .Op("flaky", _ => Task.FromException(new IOException("down")), retry: new RetryPolicy(3, TimeSpan.FromHours(1)))
            .Op("after", _ => Task.CompletedTask, dependsOn: ["flaky"]));
        using var run = TestRun.Start(job);

        await run.Events.WaitForAsync(EventTypes.OpRetrying, "flaky");
        await run.Cancellation.CancelAsync();

        (await run.EndAsync()).ShouldBe(RunOutcome.Canceled);
        run.Events.OfType(EventTypes.OpStarted, "flaky").Count.ShouldBe(1);
        run.Events.Single(EventTypes.OpCanceled, "flaky");
        run.Events.Single(EventTypes.OpSkipped, "after").Reason.ShouldBe("dependency 'flaky' canceled");
        run.Events.All[^1].Type.ShouldBe(EventTypes.RunCanceled);
    }
}
