namespace Skiff.Core.Queues;

/// <summary>
/// The metadata store's task tables (docs/queues.md): each pool's tasks, leased to one worker at a time until a visibility
/// timeout, and each task's result, recorded once. A task leaves the tables in the transaction that records its result.
/// The embedded queue (<c>StoreTaskQueue</c>) is all of this; the RabbitMQ queue records results here, and hands a long
/// task's custody to a lease here so that no delivery stays unacknowledged past the broker's consumer timeout. Every
/// time here is the store's clock. Implemented by the metadata store (SQLite and PostgreSQL).
/// </summary>
internal interface ITaskStore
{
    /// <summary>
    /// Queues a task on <paramref name="pool"/>, ready now, behind the pool's tasks queued before it. Returns false,
    /// changing nothing, when a task with this id is queued or has a result (publishing again is safe).
    /// </summary>
    Task<bool> EnqueueTaskAsync(string pool, TaskMessage task, CancellationToken cancellationToken);

    /// <summary>
    /// Leases up to <paramref name="limit"/> of <paramref name="pool"/>'s ready tasks (never leased, or whose lease ran
    /// out), oldest first, to <paramref name="holder"/> until now + <paramref name="lease"/>, counting a delivery for each.
    /// A task whose lease ran out after its <paramref name="deliveryLimit"/>th delivery is dead-lettered instead: its
    /// result records the failure with its last error. Of stores leasing at once, each task goes to one. The deliveries
    /// returned carry <paramref name="holder"/> as their <see cref="TaskDelivery.Token"/>.
    /// </summary>
    Task<IReadOnlyList<TaskDelivery>> LeaseTasksAsync(string pool, string holder, TimeSpan lease, int limit, int deliveryLimit, CancellationToken cancellationToken);

    /// <summary>
    /// Moves the end of <paramref name="holder"/>'s lease on a task to now + <paramref name="lease"/>. Returns false when
    /// the task is no longer leased to it (settled, or its lease ran out and another worker took it).
    /// </summary>
    Task<bool> RenewTaskLeaseAsync(string taskId, string holder, TimeSpan lease, CancellationToken cancellationToken);

    /// <summary>
    /// Ends <paramref name="holder"/>'s lease on a failed task: the task is ready again with <paramref name="error"/> as
    /// its last error or, when it was delivered <paramref name="deliveryLimit"/> times, dead-lettered with it (a failed
    /// result). Returns false, changing nothing, when the task is no longer leased to <paramref name="holder"/>.
    /// </summary>
    Task<bool> FailTaskAsync(string taskId, string holder, string error, int deliveryLimit, CancellationToken cancellationToken);

    /// <summary>Ends <paramref name="holder"/>'s lease on a task it never started (a consumer that stops): ready again, its delivery count kept.</summary>
    Task<bool> ReleaseTaskAsync(string taskId, string holder, CancellationToken cancellationToken);

    /// <summary>How many of <paramref name="pool"/>'s queued tasks are ready and how many leased now.</summary>
    Task<PoolTaskCounts> CountTasksAsync(string pool, CancellationToken cancellationToken);

    /// <summary>
    /// Records a task's result unless it has one, and takes the task off the store's queue if it is there, in one
    /// transaction. Returns false when a result was recorded before: the first one counts, and all this changes then is
    /// that a copy the result left on a broker (<see cref="RecordCanceledOnBrokerAsync"/>) is settled.
    /// </summary>
    Task<bool> RecordTaskResultAsync(TaskResult result, CancellationToken cancellationToken);

    /// <summary>
    /// Records the result of a call canceled while its task waits on a broker, unless it has one, marked as leaving that
    /// copy there: it is counted by <see cref="CountBrokerCopiesAsync"/> until a worker takes it and records a result for
    /// it (which changes nothing else). Returns false, changing nothing, when a result was recorded before.
    /// </summary>
    Task<bool> RecordCanceledOnBrokerAsync(TaskResult result, CancellationToken cancellationToken);

    /// <summary>How many of <paramref name="pool"/>'s tasks have a result and a copy still on the broker (<see cref="RecordCanceledOnBrokerAsync"/>): no work for it.</summary>
    Task<long> CountBrokerCopiesAsync(string pool, CancellationToken cancellationToken);

    /// <summary>The task's recorded result, or null.</summary>
    Task<TaskResult?> GetTaskResultAsync(string taskId, CancellationToken cancellationToken);

    /// <summary>Which of <paramref name="taskIds"/> have a recorded result: one query for many (a server's waiting calls).</summary>
    Task<IReadOnlySet<string>> ListTaskResultIdsAsync(IReadOnlyCollection<string> taskIds, CancellationToken cancellationToken);

    /// <summary>
    /// Takes custody of a task a broker delivered: queues it on its pool already leased to
    /// <paramref name="holder"/> until now + <paramref name="lease"/>, with the delivery's count and last error. Returns
    /// false, changing nothing, when the task has a result or is in the store already.
    /// </summary>
    Task<bool> HoldTaskAsync(TaskDelivery delivery, string holder, TimeSpan lease, CancellationToken cancellationToken);

    /// <summary>
    /// Whether the store holds the task, ready or leased (not yet settled): on the embedded queue, whether it is queued (a
    /// call sent again for it is not refused).
    /// </summary>
    Task<bool> HasTaskAsync(string taskId, CancellationToken cancellationToken);

    /// <summary>
    /// Who last leased a task the store holds (a worker holding it in custody, or a broker queue's sweep sending it back),
    /// even if that lease ran out; null when the store does not hold the task or no one leased it.
    /// </summary>
    Task<string?> GetTaskHolderAsync(string taskId, CancellationToken cancellationToken);

    /// <summary>Takes a task leased to <paramref name="holder"/> out of the store (handed back to a broker). Returns false when it is not leased to it.</summary>
    Task<bool> RemoveTaskAsync(string taskId, string holder, CancellationToken cancellationToken);
}
