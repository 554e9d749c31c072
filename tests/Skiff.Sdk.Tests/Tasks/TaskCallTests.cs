using System.Text.Json;
using Microsoft.Extensions.Logging;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;
using Skiff.Sdk.Tests.Execution;

namespace Skiff.Sdk.Tests.Tasks;

/// <summary>An op calling a task with <see cref="OpContext.CallAsync{TInput, TOutput}"/>, served in-process as in a local run.</summary>
public sealed class TaskCallTests
{
    public sealed record Scan(string ScanId, IReadOnlyList<int> Frames, DateTimeOffset TakenAt);

    public sealed record Mesh(string ScanId, int Vertices, Dictionary<string, double> Quality);

    [Fact]
    public async Task InputAndOutput_TravelAsJson_AndComeBackTyped()
    {
        var seen = new List<Scan>();
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", (TaskContext _, Scan scan) =>
        {
            seen.Add(scan);
            return Task.FromResult(new Mesh(scan.ScanId, scan.Frames.Sum(), new Dictionary<string, double> { ["rms"] = 0.25 }));
        });
        var taken = new DateTimeOffset(2026, 11, 29, 10, 0, 0, TimeSpan.FromHours(1));
        Mesh? result = null;
        var job = Some.Job(j => j.Op("mesh", async context =>
            result = await context.CallAsync<Scan, Mesh>("meshing", "reconstruct", new Scan("s-1", [1, 2, 3], taken))));

        using var run = await TestRun.CompleteAsync(job, tasks: catalog.LocalTasks(TimeProvider.System));

        run.Result.ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
        var scan = seen.ShouldHaveSingleItem();
        scan.ScanId.ShouldBe("s-1");
        scan.Frames.ShouldBe([1, 2, 3]);
        scan.TakenAt.ShouldBe(taken);
        result.ShouldNotBeNull();
        result.ScanId.ShouldBe("s-1");
        result.Vertices.ShouldBe(6);
        result.Quality.ShouldBe(new Dictionary<string, double> { ["rms"] = 0.25 });
    }

    [Fact]
    public async Task TheTaskReadsTheCallersJson_NotItsType()
    {
        // Caller and pool are separate projects: they agree on JSON (snake_case, as op outputs), not on a shared type.
        var catalog = new JobCatalog();
        catalog.Task("echo", (TaskContext _, JsonElement input) => Task.FromResult(input.GetRawText()));
        string? echoed = null;
        var job = Some.Job(j => j.Op("call", async context =>
            echoed = await context.CallAsync<Scan, string>("meshing", "echo", new Scan("s-2", [7], DateTimeOffset.UnixEpoch))));

        using var run = await TestRun.CompleteAsync(job, tasks: catalog.LocalTasks(TimeProvider.System));

        run.Result.ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
        echoed.ShouldBe("""{"scan_id":"s-2","frames":[7],"taken_at":"1970-01-01T00:00:00+00:00"}""");
    }

    [Fact]
    public async Task InputThatDoesNotMatchTheTasksType_FailsTheCall_SayingWhichTypeAndWhatToSend()
    {
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", (TaskContext _, Scan scan) => Task.FromResult(scan.Frames.Count));
        var job = Some.Job(j => j.Op("mesh", async context => await context.CallAsync<int, int>("meshing", "reconstruct", 42)));

        using var run = await TestRun.CompleteAsync(job, tasks: catalog.LocalTasks(TimeProvider.System));

        run.Result.ShouldBe(RunOutcome.Failed);
        var text = run.Events.ToString();
        text.ShouldContain("the call's input does not match task 'reconstruct''s input type Skiff.Sdk.Tests.Tasks.TaskCallTests.Scan");
        text.ShouldContain("must serialize to that type's JSON");
    }

    [Fact]
    public async Task OutputReadAsTheWrongType_FailsTheOp_NamingTheTaskAndTheType()
    {
        var catalog = new JobCatalog();
        catalog.Task("count", (TaskContext _, int frames) => Task.FromResult(frames));
        var job = Some.Job(j => j.Op("mesh", async context => await context.CallAsync<int, Mesh>("meshing", "count", 3)));

        using var run = await TestRun.CompleteAsync(job, tasks: catalog.LocalTasks(TimeProvider.System));

        run.Result.ShouldBe(RunOutcome.Failed);
        run.Events.ToString().ShouldContain("task 'count' of pool 'meshing' returned output that does not match Skiff.Sdk.Tests.Tasks.TaskCallTests.Mesh");
    }

    [Fact]
    public async Task AFailingTask_IsRetriedByItsOwnPolicy_WithItsDelays_UnderOneTaskId()
    {
        var time = new ManualTimeProvider();
        var attempts = new List<(int Attempt, string TaskId)>();
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", (TaskContext context, int frames) =>
        {
            attempts.Add((context.Attempt, context.TaskId));
            return context.Attempt < 3 ? Task.FromException<int>(new IOException($"gpu busy {context.Attempt}")) : Task.FromResult(frames * 2);
        }, new RetryPolicy(3, TimeSpan.FromSeconds(10)));
        var result = 0;
        var job = Some.Job(j => j.Op("mesh", async context => result = await context.CallAsync<int, int>("meshing", "reconstruct", 21)));
        using var run = TestRun.Start(job, time, catalog.LocalTasks(time));

        var first = await run.Events.WaitForAsync(e => e.Type == EventTypes.TaskRetrying && e.TaskAttempt == 1);
        await time.WaitForTimerAsync();
        time.PendingDelays().ShouldBe([TimeSpan.FromSeconds(10)]);
        time.Advance(TimeSpan.FromSeconds(10));
        var second = await run.Events.WaitForAsync(e => e.Type == EventTypes.TaskRetrying && e.TaskAttempt == 2);
        await time.WaitForTimerAsync();
        time.PendingDelays().ShouldBe([TimeSpan.FromSeconds(20)]);
        time.Advance(TimeSpan.FromSeconds(20));

        (await run.EndAsync()).ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
        result.ShouldBe(42);
        attempts.Select(a => a.Attempt).ShouldBe([1, 2, 3]);
        attempts.Select(a => a.TaskId).Distinct().ShouldBe(["run-1:mesh:1"]);
        first.DelayMs.ShouldBe(10_000);
        first.Error!.Message.ShouldBe("gpu busy 1");
        second.DelayMs.ShouldBe(20_000);
        run.Events.Types.ShouldBe([
            EventTypes.RunStarted, EventTypes.OpStarted,
            EventTypes.TaskStarted, EventTypes.TaskRetrying,
            EventTypes.TaskStarted, EventTypes.TaskRetrying,
            EventTypes.TaskStarted, EventTypes.TaskSucceeded,
            EventTypes.OpSucceeded, EventTypes.RunSucceeded,
        ]);
        run.Events.OfType(EventTypes.TaskStarted).Select(e => e.TaskAttempt).ShouldBe([1, 2, 3]);
        run.Events.All.Where(e => e.Task is not null).ShouldAllBe(e =>
            e.Op == "mesh" && e.Attempt == 1 && e.Pool == "meshing" && e.Task == "reconstruct" && e.TaskId == "run-1:mesh:1");
    }

    [Fact]
    public async Task ATaskFailingEveryAttempt_FailsTheCallingOp_WithTheTasksError()
    {
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", (TaskContext _, int _) => Task.FromException<int>(new InvalidDataException("scan is empty")), new RetryPolicy(2, TimeSpan.Zero));
        TaskCallException? caught = null;
        var job = Some.Job(j => j
            .Op("mesh", async context =>
            {
                try
                {
                    return await context.CallAsync<int, int>("meshing", "reconstruct", 1);
                }
                catch (TaskCallException exception)
                {
                    caught = exception;
                    throw;
                }
            })
            .Op("after", _ => Task.CompletedTask, dependsOn: ["mesh"]));

        using var run = await TestRun.CompleteAsync(job, tasks: catalog.LocalTasks(TimeProvider.System));

        run.Result.ShouldBe(RunOutcome.Failed);
        caught.ShouldNotBeNull();
        caught.Message.ShouldBe("task 'reconstruct' of pool 'meshing' failed on all 2 attempts: System.IO.InvalidDataException: scan is empty");
        (caught.Pool, caught.Task, caught.TaskId, caught.ErrorType).ShouldBe(("meshing", "reconstruct", "run-1:mesh:1", "System.IO.InvalidDataException"));
        run.Events.OfType(EventTypes.TaskFailed).ShouldHaveSingleItem().TaskAttempt.ShouldBe(2);
        run.Events.Single(EventTypes.OpFailed, "mesh").Error!.Type.ShouldBe("Skiff.Sdk.TaskCallException");
        run.Events.Single(EventTypes.OpSkipped, "after");
        run.Events.All[^1].Reason.ShouldBe($"op 'mesh' failed: {caught.Message}");
    }

    [Fact]
    public async Task LogsProgressAndOutputOfTheTask_AreEventsOfTheCallingRun_AttributedToTheOpAndTheTask()
    {
        var output = new CapturedConsoleWriter(OutputScope.Stdout, TextWriter.Null);
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", (TaskContext context, int frames) =>
        {
            context.Logger.LogInformation("meshing {Frames} frames", frames);
            context.ReportProgress(0.5, "half the frames");
            output.WriteLine("from the task's console");
            return Task.FromResult(frames);
        });
        var job = Some.Job(j => j.Op("mesh", async context =>
        {
            context.Logger.LogInformation("calling");
            await context.CallAsync<int, int>("meshing@1a2b3c4d", "reconstruct", 8);
            output.WriteLine("from the op's console");
        }));

        using var run = await TestRun.CompleteAsync(job, tasks: catalog.LocalTasks(TimeProvider.System));

        run.Result.ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
        var logs = run.Events.OfType(EventTypes.Log);
        logs.Select(e => (e.Message, e.Task)).ShouldBe([("calling", null), ("meshing 8 frames", "reconstruct")]);
        var taskLog = logs[1];
        (taskLog.Op, taskLog.Attempt, taskLog.Pool, taskLog.TaskId, taskLog.TaskAttempt).ShouldBe(("mesh", 1, "meshing", "run-1:mesh:1", 1));
        taskLog.Properties!["Frames"].GetInt32().ShouldBe(8);
        var progress = run.Events.OfType(EventTypes.Progress).ShouldHaveSingleItem();
        (progress.Op, progress.Task, progress.Pool, progress.Fraction, progress.Message).ShouldBe(("mesh", "reconstruct", "meshing", 0.5, "half the frames"));
        var lines = run.Events.OfType(EventTypes.Output);
        lines.Select(e => (e.Text, e.Task, e.Op)).ShouldBe([("from the task's console", "reconstruct", "mesh"), ("from the op's console", null, "mesh")]);
        // The pin travels with the call; locally the one version there is serves it.
        run.Events.OfType(EventTypes.TaskStarted).ShouldHaveSingleItem().Pin.ShouldBe("1a2b3c4d");
    }

    [Fact]
    public async Task CancelingTheRun_CancelsTheTask_AndTheOpEndsCanceled()
    {
        var taskCanceled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", async (TaskContext context, int frames) =>
        {
            await using (context.CancellationToken.Register(() => taskCanceled.TrySetResult()))
            {
                await Task.Delay(Timeout.Infinite, context.CancellationToken);
            }

            return frames;
        }, new RetryPolicy(5, TimeSpan.Zero));
        var job = Some.Job(j => j.Op("mesh", context => context.CallAsync<int, int>("meshing", "reconstruct", 1)));
        using var run = TestRun.Start(job, tasks: catalog.LocalTasks(TimeProvider.System));

        await run.Events.WaitForAsync(EventTypes.TaskStarted);
        await run.Cancellation.CancelAsync();

        (await run.EndAsync()).ShouldBe(RunOutcome.Canceled, run.Events.ToString());
        await taskCanceled.Task.WaitAsync(TestRun.Deadline);
        run.Events.OfType(EventTypes.TaskStarted).Count.ShouldBe(1, "cancellation is not retried");
        run.Events.OfType(EventTypes.TaskCanceled).ShouldHaveSingleItem().Task.ShouldBe("reconstruct");
        run.Events.Single(EventTypes.OpCanceled, "mesh");
        run.Events.OfType(EventTypes.TaskFailed).ShouldBeEmpty();
    }

    [Fact]
    public async Task ARetriedOp_CallsAgainUnderTheSameTaskIds_AndEachCallOfAnAttemptHasItsOwn()
    {
        var ids = new List<string>();
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", (TaskContext context, int n) =>
        {
            lock (ids)
            {
                ids.Add(context.TaskId);
            }

            return Task.FromResult(n);
        });
        var job = Some.Job(j => j.Op("mesh", async context =>
        {
            await context.CallAsync<int, int>("meshing", "reconstruct", 1);
            await context.CallAsync<int, int>("meshing", "reconstruct", 2);
            if (context.Attempt == 1)
            {
                throw new IOException("op fails after its calls");
            }
        }, retry: new RetryPolicy(2, TimeSpan.Zero)));

        using var run = await TestRun.CompleteAsync(job, tasks: catalog.LocalTasks(TimeProvider.System));

        run.Result.ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
        ids.ShouldBe(["run-1:mesh:1", "run-1:mesh:2", "run-1:mesh:1", "run-1:mesh:2"]);
    }

    [Fact]
    public async Task ALocalPool_ServesItsCalls_AndOtherPoolsFallToTheProgramsOwnTasks()
    {
        var catalog = new JobCatalog();
        catalog.Task("which", (TaskContext context, int _) => Task.FromResult($"own, as {context.Pool}"));
        catalog.LocalPool("meshing", pool => pool.Task("which", (TaskContext context, int _) => Task.FromResult($"local pool {context.Pool}")));
        var answers = new List<string>();
        var job = Some.Job(j => j.Op("call", async context =>
        {
            answers.Add(await context.CallAsync<int, string>("meshing", "which", 0));
            answers.Add(await context.CallAsync<int, string>("shading", "which", 0));
        }));

        using var run = await TestRun.CompleteAsync(job, tasks: catalog.LocalTasks(TimeProvider.System));

        run.Result.ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
        answers.ShouldBe(["local pool meshing", "own, as shading"]);
    }

    [Fact]
    public async Task ACallToATaskNobodyServesLocally_FailsTheOp_SayingHowToServeIt()
    {
        var catalog = new JobCatalog();
        catalog.Task("other", (TaskContext _, int n) => Task.FromResult(n));
        catalog.LocalPool("shading", pool => pool.Task("shade", (TaskContext _, int n) => Task.FromResult(n)));
        var job = Some.Job(j => j
            .Op("unknown", context => context.CallAsync<int, int>("meshing", "reconstruct", 1))
            .Op("wrong_pool_task", context => context.CallAsync<int, int>("shading", "reconstruct", 1)));

        using var run = await TestRun.CompleteAsync(job, tasks: catalog.LocalTasks(TimeProvider.System));

        run.Result.ShouldBe(RunOutcome.Failed);
        run.Events.Single(EventTypes.OpFailed, "unknown").Error!.Message.ShouldBe(
            "this local run cannot serve task 'reconstruct' of pool 'meshing': the program declares no task 'reconstruct' (it declares: other) and no local pool 'meshing' (local pools: shading). "
            + "Declare the task here with jobs.Task(\"reconstruct\", ...), or reference the pool's project and register its tasks with jobs.LocalPool(\"meshing\", ...).");
        run.Events.Single(EventTypes.OpFailed, "wrong_pool_task").Error!.Message.ShouldBe(
            "pool 'shading' (registered for local runs with LocalPool) declares no task 'reconstruct'; it declares: shade.");
        run.Events.OfType(EventTypes.TaskStarted).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("Meshing", "reconstruct", "'Meshing' does not name a pool")]
    [InlineData("meshing@abc", "reconstruct", "'meshing@abc' pins the release 'abc', which is not a release prefix")]
    [InlineData("meshing", "re/construct", "'re/construct' is not a valid task name")]
    public async Task ABadPoolOrTaskName_FailsTheOp_NamingIt(string pool, string task, string expected)
    {
        var served = false;
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", (TaskContext _, int n) => Task.FromResult(served = true));
        var job = Some.Job(j => j.Op("mesh", context => context.CallAsync<int, bool>(pool, task, 1)));

        using var run = await TestRun.CompleteAsync(job, tasks: catalog.LocalTasks(TimeProvider.System));

        run.Result.ShouldBe(RunOutcome.Failed);
        var error = run.Events.Single(EventTypes.OpFailed, "mesh").Error!;
        error.Type.ShouldBe("System.ArgumentException");
        error.Message.ShouldContain(expected);
        served.ShouldBeFalse();
    }

    [Fact]
    public async Task WithoutATaskCaller_ACallFailsClearly_AndNothingIsServed()
    {
        var served = false;
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", (TaskContext _, int n) => Task.FromResult(served = true));
        var job = catalog.Job("job");
        job.Op("mesh", context => context.CallAsync<int, bool>("meshing@1a2b3c", "reconstruct", 1));

        // No task caller given: the executor's default (the local runner and the code server always give one).
        using var run = await TestRun.CompleteAsync(catalog.Build().Single());

        run.Result.ShouldBe(RunOutcome.Failed);
        var error = run.Events.Single(EventTypes.OpFailed, "mesh").Error!;
        error.Type.ShouldBe("Skiff.Sdk.TaskCallException");
        error.Message.ShouldBe(
            "op 'mesh' called task 'reconstruct' of pool 'meshing@1a2b3c', but this run has no way to reach a pool; the call was not sent. "
            + "Run the job locally (dotnet run -- run JOB), where tasks are served in-process, or deployed (docs/tasks.md).");
        served.ShouldBeFalse();
        run.Events.All.ShouldAllBe(e => e.Task == null);
    }
}
