namespace Skiff.Sdk.Tasks;

/// <summary>
/// Task calls of a run on an agent. The agent's half (the pool's queue, the worker, the result coming back) is not
/// built yet, so every call fails, saying so, instead of appearing to work: nothing is sent anywhere.
/// </summary>
internal sealed class DeployedTaskCaller : ITaskCaller
{
    public static DeployedTaskCaller Instance { get; } = new();

    private DeployedTaskCaller()
    {
    }

    public Task<byte[]> CallAsync(TaskCall call, CancellationToken cancellationToken) =>
        Task.FromException<byte[]>(new TaskCallException(
            call.Pool.ToString(),
            call.Task,
            taskId: null,
            $"op '{call.Op}' called task '{call.Task}' of pool '{call.Pool}', but task calls across locations are not available in deployed runs yet; "
            + "the call was not sent. Run the job locally (dotnet run -- run JOB), where tasks are served in-process (docs/tasks.md)."));
}
