namespace Skiff.Core.Queues;

/// <summary>
/// Where task results are recorded, once per task: the metadata store. The embedded queue lives in the same store and
/// settles a task in the transaction that records its result; a broker's queue (RabbitMQ) acknowledges a delivery only
/// after <see cref="RecordTaskResultAsync"/> returned, and asks it whether a redelivered task is done already.
/// </summary>
internal interface ITaskResults
{
    /// <summary>
    /// Records a task's result unless it has one, and takes the task off the store's own queue if it is there, in one
    /// transaction. Returns false, changing nothing, when a result was recorded before: the first one counts.
    /// </summary>
    Task<bool> RecordTaskResultAsync(TaskResult result, CancellationToken cancellationToken);

    /// <summary>The task's recorded result, or null.</summary>
    Task<TaskResult?> GetTaskResultAsync(string taskId, CancellationToken cancellationToken);
}
