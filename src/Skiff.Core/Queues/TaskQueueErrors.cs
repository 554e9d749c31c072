namespace Skiff.Core.Queues;

/// <summary>
/// What the queue's state says to people: the errors a dead-lettered task's result carries when no worker reported one
/// (what the calling op fails with), and why a task was delivered again (what its calling run is told).
/// </summary>
internal static class TaskQueueErrors
{
    /// <summary>A task whose last allowed delivery ended with its worker gone (its lease ran out, its connection closed).</summary>
    public static string LeaseRanOut(string taskId, int deliveries, string? lastError) =>
        $"task {taskId} was delivered {deliveries} times, the limit, and its worker stopped before finishing it the last time"
        + (lastError is null ? " (it crashed, was killed or lost its connection); no delivery reported an error." : $"; the last error reported: {lastError}");

    /// <summary>
    /// Why delivery <paramref name="deliveryCount"/> of a task happens: null for the first; otherwise the error the
    /// previous delivery failed with, or, when it reported none (<see cref="TaskDelivery.PreviousError"/> null), what is known.
    /// </summary>
    public static string? Redelivered(int deliveryCount, string? previousError) =>
        deliveryCount <= 1 ? null
        : previousError is null ? "the previous delivery ended without a result: its worker, agent or connection went away, or its lease ran out"
        : $"the previous delivery failed: {previousError}";
}
