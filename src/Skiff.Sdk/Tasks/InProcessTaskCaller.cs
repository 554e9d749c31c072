using Skiff.Sdk.Definitions;

namespace Skiff.Sdk.Tasks;

/// <summary>
/// Serves task calls in the calling run's own process, for local development (docs/tasks.md, "Local runs"): a call to
/// a pool registered with <see cref="JobCatalog.LocalPool"/> runs that pool's task; a call to any other pool runs the
/// program's own task of that name, as if the program were the pool. The task's input and output still go through
/// JSON, and its retries, logs, output and progress are the same events a deployed call gives (<see cref="TaskAttempts"/> runs both).
/// </summary>
internal sealed class InProcessTaskCaller(
    IReadOnlyList<TaskDefinition> ownTasks,
    IReadOnlyDictionary<string, IReadOnlyList<TaskDefinition>> localPools,
    TimeProvider time) : ITaskCaller
{
    public Task<byte[]> CallAsync(TaskCall call, CancellationToken cancellationToken) =>
        TaskAttempts.RunAsync(Find(call), call, releaseId: null, time, cancellationToken);

    private TaskDefinition Find(TaskCall call)
    {
        var pool = call.Pool.Name;
        if (localPools.TryGetValue(pool, out var poolTasks))
        {
            return poolTasks.FirstOrDefault(t => t.Name == call.Task) ?? throw new TaskCallException(
                call.Pool.ToString(), call.Task, null,
                $"pool '{pool}' (registered for local runs with LocalPool) declares no task '{call.Task}'; it declares: {List(poolTasks)}.");
        }

        return ownTasks.FirstOrDefault(t => t.Name == call.Task) ?? throw new TaskCallException(
            call.Pool.ToString(), call.Task, null,
            $"this local run cannot serve task '{call.Task}' of pool '{pool}': the program declares no task '{call.Task}' (it declares: {List(ownTasks)}) "
            + $"and no local pool '{pool}'{(localPools.Count == 0 ? "" : $" (local pools: {string.Join(", ", localPools.Keys)})")}. "
            + $"Declare the task here with jobs.Task(\"{call.Task}\", ...), or reference the pool's project and register its tasks with jobs.LocalPool(\"{pool}\", ...).");
    }

    private static string List(IReadOnlyList<TaskDefinition> tasks) => tasks.Count == 0 ? "none" : string.Join(", ", tasks.Select(t => t.Name));
}
