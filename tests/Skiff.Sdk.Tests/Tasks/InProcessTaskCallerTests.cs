using Microsoft.Extensions.Logging;
using Skiff.Sdk.Definitions;
using Skiff.Sdk.Events;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk.Tests.Tasks;

/// <summary>A local run's task call (docs/tasks.md, "Live events"): the task's events are the run's as they happen.</summary>
public sealed class InProcessTaskCallerTests
{
    [Fact]
    public async Task ATasksLog_IsTheRunsEvent_WhileTheTaskStillRuns_WithoutAWorker()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var logged = new TaskCompletionSource<RunEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", async (TaskContext context, string scan) =>
        {
            context.Logger.LogInformation("meshing {Scan}", scan);
            await gate.Task.WaitAsync(context.CancellationToken);
            return scan.Length;
        });
        var caller = new InProcessTaskCaller(catalog.BuildTasks(), new Dictionary<string, IReadOnlyList<TaskDefinition>>(), TimeProvider.System);
        var events = new RunEventStream("r-1", TimeProvider.System, e =>
        {
            if (e.Type == EventTypes.Log)
            {
                logged.TrySetResult(e);
            }
        });
        var call = new TaskCall(new PoolReference("meshing", null), "reconstruct", "r-1:mesh:1", "\"s-1\""u8.ToArray(), events, "mesh", 1, null);

        var calling = caller.CallAsync(call, CancellationToken.None);
        var log = await logged.Task.WaitAsync(TimeSpan.FromSeconds(60));

        calling.IsCompleted.ShouldBeFalse();
        (log.Message, log.Op, log.Pool, log.Task, log.TaskAttempt).ShouldBe(("meshing s-1", "mesh", "meshing", "reconstruct", (int?)1));
        (log.Worker, log.Release, log.Delivery).ShouldBe((null, null, (int?)null));
        gate.SetResult();
        (await calling.WaitAsync(TimeSpan.FromSeconds(60))).ShouldBe("3"u8.ToArray());
    }
}
