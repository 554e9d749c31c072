namespace Skiff.Sdk.Tasks;

/// <summary>
/// Where an op's task calls go: the seam between a run and whatever serves tasks. The local runner serves them in its
/// own process (<see cref="InProcessTaskCaller"/>). In a deployed run, an implementation here in the code server will
/// send each call to its agent over the code-server protocol (task id, pool and pin, input, traceparent); the agent
/// puts it on the pool's durable queue, relays the task's events into the calling run, and answers with the result or
/// the last error. Until that exists, a deployed run's calls end in a clear error (<see cref="DeployedTaskCaller"/>).
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
