using System.Text.Json;
using Microsoft.Extensions.Logging;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;

namespace Skiff.Sdk.Tests.Execution;

/// <summary>The executor runs a job's DAG: order of events, outputs between ops, concurrency, failure.</summary>
public sealed class RunExecutorTests
{
    public sealed record Batch(string Table, IReadOnlyList<int> Rows);

    [Fact]
    public async Task SimpleJob_Succeeds_WithTheEventsOfOneOp()
    {
        var job = Some.Job(j => j.Run(context =>
        {
            context.Logger.LogInformation("Hello!");
            return Task.CompletedTask;
        }), "hello");

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Succeeded);
        run.Events.Types.ShouldBe([EventTypes.RunStarted, EventTypes.OpStarted, EventTypes.Log, EventTypes.OpSucceeded, EventTypes.RunSucceeded]);
        var started = run.Events.All[0];
        started.Job.ShouldBe("hello");
        started.Release.ShouldBe("sha256:release");
        run.Events.All[1].Op.ShouldBe("hello");
        run.Events.All[1].Attempt.ShouldBe(1);
        run.Events.All[^1].DurationMs.ShouldNotBeNull();
    }

    [Fact]
    public async Task Events_AreNumberedInOrder_RunStartedFirst_OneTerminalEventLast()
    {
        var job = Some.Job(j => j
            .Parameter("rows", 3)
            .Op("a", context =>
            {
                context.Logger.LogInformation("a");
                return Task.FromResult(1);
            })
            .Op("b", context =>
            {
                context.Logger.LogInformation("b");
                return Task.CompletedTask;
            }, dependsOn: ["a"])
            .Op("c", _ => Task.CompletedTask));

        using var run = await TestRun.CompleteAsync(job);

        var events = run.Events.All;
        events.Select(e => e.Seq).ShouldBe(Enumerable.Range(1, events.Count).Select(i => (long)i));
        events.ShouldAllBe(e => e.Run == "run-1" && e.V == 1);
        events[0].Type.ShouldBe(EventTypes.RunStarted);
        events[0].Parameters!["rows"].GetInt64().ShouldBe(3);
        events.Count(e => EventTypes.EndsRun(e.Type)).ShouldBe(1);
        events[^1].Type.ShouldBe(EventTypes.RunSucceeded);
        events.Select(e => e.Ts).ShouldBeInOrder();
        Index(run, EventTypes.OpSucceeded, "a").ShouldBeLessThan(Index(run, EventTypes.OpStarted, "b"));
    }

    [Fact]
    public async Task Context_TellsTheOpWhoItIs()
    {
        OpContext? seen = null;
        var job = Some.Job(j => j.Parameter("rows", 3).Op("load", context =>
        {
            seen = context;
            return Task.CompletedTask;
        }), "etl");

        using var run = await TestRun.CompleteAsync(job);

        seen.ShouldNotBeNull();
        seen.RunId.ShouldBe("run-1");
        seen.JobName.ShouldBe("etl");
        seen.ReleaseId.ShouldBe("sha256:release");
        seen.OpName.ShouldBe("load");
        seen.Attempt.ShouldBe(1);
        seen.Parameters.Get<int>("rows").ShouldBe(3);
    }

    [Fact]
    public async Task Outputs_ReachDependents_ThroughJson()
    {
        Batch? produced = null;
        Batch? received = null;
        JsonElement asJson = default;
        var job = Some.Job(j => j
            .Op("extract", _ =>
            {
                produced = new Batch("orders", [1, 2, 3]);
                return Task.FromResult(produced);
            })
            .Op("count", context => Task.FromResult(context.Input<Batch>("extract").Rows.Sum()), dependsOn: ["extract"])
            .Op("report", context =>
            {
                received = context.Input<Batch>("extract");
                asJson = context.Input<JsonElement>("extract");
                return Task.FromResult($"{received.Table}: {context.Input<int>("count")}");
            }, dependsOn: ["extract", "count"]));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
        received.ShouldNotBeNull();
        received.Table.ShouldBe("orders");
        received.Rows.ShouldBe([1, 2, 3]);
        ReferenceEquals(received, produced).ShouldBeFalse("a dependent gets a copy read back from JSON, as if in another process");
        asJson.GetRawText().ShouldBe("""{"table":"orders","rows":[1,2,3]}""");
    }

    [Fact]
    public async Task Input_OfAnOpWithoutOutput_IsJsonNull()
    {
        JsonValueKind? kind = null;
        var job = Some.Job(j => j
            .Op("a", _ => Task.CompletedTask)
            .Op("b", context =>
            {
                kind = context.Input<JsonElement>("a").ValueKind;
                return Task.CompletedTask;
            }, dependsOn: ["a"]));

        using var run = await TestRun.CompleteAsync(job);

        kind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task AnOutputThatCannotBeSerialized_FailsTheOp()
    {
        var job = Some.Job(j => j
            .Op("a", _ => Task.FromResult(typeof(string)))
            .Op("b", _ => Task.CompletedTask, dependsOn: ["a"]));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Failed);
        run.Events.Single(EventTypes.OpFailed, "a").Error!.Type.ShouldBe("System.NotSupportedException");
        run.Events.Single(EventTypes.OpSkipped, "b");
    }

    [Fact]
    public async Task Input_OfAnOpNotDependedOn_FailsTheOpWithAClearError()
    {
        var job = Some.Job(j => j
            .Op("a", _ => Task.FromResult(1))
            .Op("b", _ => Task.FromResult(2))
            .Op("c", context => Task.FromResult(context.Input<int>("b")), dependsOn: ["a"]));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Failed);
        var error = run.Events.Single(EventTypes.OpFailed, "c").Error!;
        error.Type.ShouldBe(typeof(InvalidOperationException).FullName);
        error.Message.ShouldBe("Op 'c' reads the output of 'b' but does not depend on it; add it to dependsOn. It depends on: a.");
    }

    [Fact]
    public async Task IndependentOps_RunAtTheSameTime()
    {
        // Each op waits until the other has started: only concurrent execution lets both finish.
        var aStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var job = Some.Job(j => j
            .Op("a", async context =>
            {
                aStarted.SetResult();
                await bStarted.Task.WaitAsync(context.CancellationToken);
            })
            .Op("b", async context =>
            {
                bStarted.SetResult();
                await aStarted.Task.WaitAsync(context.CancellationToken);
            }));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
    }

    [Fact]
    public async Task AnOpThatBlocksItsThread_DoesNotStopASiblingFromStarting()
    {
        using var gate = new ManualResetEventSlim();
        var job = Some.Job(j => j
            .Op("blocking", context =>
            {
                // No await before blocking: the body itself holds its thread.
                gate.Wait(context.CancellationToken);
                return Task.CompletedTask;
            })
            .Op("sibling", _ =>
            {
                gate.Set();
                return Task.CompletedTask;
            }));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
    }

    [Fact]
    public async Task AFailingOp_FailsTheRun_SkipsItsDependents_AndLetsOtherBranchesRun()
    {
        var job = Some.Job(j => j
            .Op("extract", _ => Task.FromResult(1))
            .Op("transform", _ => Task.FromException(new InvalidOperationException("bad row 7")), dependsOn: ["extract"])
            .Op("load", _ => Task.CompletedTask, dependsOn: ["transform"])
            .Op("publish", _ => Task.CompletedTask, dependsOn: ["load"])
            .Op("audit", _ => Task.CompletedTask, dependsOn: ["extract"]));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Failed);
        run.Events.Single(EventTypes.OpSucceeded, "audit");
        run.Events.OfType(EventTypes.OpStarted, "load").ShouldBeEmpty();
        run.Events.OfType(EventTypes.OpStarted, "publish").ShouldBeEmpty();
        run.Events.Single(EventTypes.OpSkipped, "load").Reason.ShouldBe("dependency 'transform' failed");
        run.Events.Single(EventTypes.OpSkipped, "publish").Reason.ShouldBe("dependency 'load' skipped");
        var terminal = run.Events.All[^1];
        terminal.Type.ShouldBe(EventTypes.RunFailed);
        terminal.Reason.ShouldBe("op 'transform' failed: bad row 7");
        terminal.Error!.Message.ShouldBe("bad row 7");
    }

    [Fact]
    public async Task OpFailed_CarriesTheExceptionTypeMessageAndStack()
    {
        var job = Some.Job(j => j.Op("parse", _ => Parse("x,y")));

        using var run = await TestRun.CompleteAsync(job);

        var failed = run.Events.Single(EventTypes.OpFailed, "parse");
        failed.Attempt.ShouldBe(1);
        failed.DurationMs.ShouldNotBeNull();
        failed.Error!.Type.ShouldBe("System.FormatException");
        failed.Error.Message.ShouldBe("cannot parse 'x,y'");
        failed.Error.Stack.ShouldNotBeNull();
        failed.Error.Stack.ShouldContain(nameof(Parse));
    }

    [Fact]
    public async Task AnOpThrowingSynchronously_FailsLikeOneThatThrowsAfterAwaiting()
    {
        var job = Some.Job(j => j.Op("boom", (Func<OpContext, Task>)(_ => throw new InvalidDataException("sync"))));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Failed);
        run.Events.Single(EventTypes.OpFailed, "boom").Error!.Type.ShouldBe("System.IO.InvalidDataException");
    }

    [Fact]
    public async Task AnOperationCanceledExceptionNotCausedByTheRun_IsAFailure()
    {
        // An op's own timeout (HttpClient, a linked token) is not the run being canceled.
        var job = Some.Job(j => j.Op("fetch", _ => Task.FromException(new TaskCanceledException("timed out"))));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Failed);
        run.Events.Single(EventTypes.OpFailed, "fetch").Error!.Message.ShouldBe("timed out");
        run.Events.OfType(EventTypes.OpCanceled).ShouldBeEmpty();
    }

    [Fact]
    public async Task RecordMetadata_EmitsAMetadataEventWithTheJsonValue()
    {
        var job = Some.Job(j => j.Op("load", context =>
        {
            context.RecordMetadata("rows", 1200);
            context.RecordMetadata("files", new[] { "a.csv", "b.csv" });
            context.RecordMetadata("nothing", null);
            return Task.CompletedTask;
        }));

        using var run = await TestRun.CompleteAsync(job);

        var metadata = run.Events.OfType(EventTypes.Metadata, "load");
        metadata.Count.ShouldBe(3);
        metadata[0].Metadata!["rows"].GetRawText().ShouldBe("1200");
        metadata[1].Metadata!["files"].GetRawText().ShouldBe("""["a.csv","b.csv"]""");
        metadata[2].Metadata!["nothing"].ValueKind.ShouldBe(JsonValueKind.Null);
    }

    private static int Index(TestRun run, string type, string op) =>
        run.Events.All.ToList().FindIndex(e => e.Type == type && e.Op == op);

    private static Task Parse(string text) => throw new FormatException($"cannot parse '{text}'");
}
