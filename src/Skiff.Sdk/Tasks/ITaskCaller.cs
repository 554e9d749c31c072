namespace Skiff.Sdk.Tasks;

/// <summary>
/// Where an op's task calls go: the seam between a run and whatever serves tasks. The local runner serves them in its
/// own process (<see cref="InProcessTaskCaller"/>). A deployed run's code server sends each call to its agent over the
/// code-server protocol (<see cref="DeployedTaskCaller"/>); the server puts it on the pool's durable queue, a worker of
/// the pool runs it, and the result (or the last error) and the task's events come back the same way.
/// </summary>
internal interface ITaskCaller
{
    /// <summary>
    /// Has the task run (with its retries) and returns its output as JSON. Emits the task's events (<c>task_*</c>, and its
    /// logs, output and progress) into <see cref="TaskCall.Events"/>, attributed to the calling op and the task.
    /// </summary>
    /// <exception cref="TaskCallException">No pool serves the task, or it failed on its last attempt.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled; the task was canceled too.</exception>
    Task<byte[]> CallAsync(TaskCall call, CancellationToken cancellationToken);
}
