namespace Skiff.Sdk.Tasks;

/// <summary>
/// Where an op's task calls go: the seam between a run and whatever serves tasks. The local runner serves them in its
/// own process (<see cref="InProcessTaskCaller"/>). In a deployed run they will go through the agent to the pool's
/// durable queue, and the task's events come back into the calling run; until that exists, a deployed run's calls end
/// in a clear error (<see cref="DeployedTaskCaller"/>).
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
