namespace Skiff.Core.Queues;

/// <summary>The errors a dead-lettered task's result carries when no worker reported one: what the calling op fails with.</summary>
internal static class TaskQueueErrors
{
    /// <summary>A task whose last allowed delivery ended with its worker gone (its lease ran out, its connection closed).</summary>
    public static string LeaseRanOut(string taskId, int deliveries, string? lastError) =>
        $"task {taskId} was delivered {deliveries} times, the limit, and its worker stopped before finishing it the last time"
        + (lastError is null ? " (it crashed, was killed or lost its connection); no delivery reported an error." : $"; the last error reported: {lastError}");
}
