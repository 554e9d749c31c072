namespace Skiff.Sdk.Tasks;

/// <summary>
/// Task calls of a run that was given no way to reach a pool (an executor built without one): every call fails saying
/// so, instead of appearing to work. Runs of the local runner and of a code server always get a real caller.
/// </summary>
internal sealed class UnavailableTaskCaller : ITaskCaller
{
    public static UnavailableTaskCaller Instance { get; } = new();

    private UnavailableTaskCaller()
    {
    }

    public Task<byte[]> CallAsync(TaskCall call, CancellationToken cancellationToken) =>
        Task.FromException<byte[]>(new TaskCallException(
            call.Pool.ToString(),
            call.Task,
            taskId: null,
            $"op '{call.Op}' called task '{call.Task}' of pool '{call.Pool}', but this run has no way to reach a pool; the call was not sent. "
            + "Run the job locally (dotnet run -- run JOB), where tasks are served in-process, or deployed (docs/tasks.md)."));
}
