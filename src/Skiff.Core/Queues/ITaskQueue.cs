namespace Skiff.Core.Queues;

/// <summary>
/// A pool's durable task queue (docs/queues.md): callers publish tasks to a pool by name, the pool's workers consume
/// them, and a task leaves the queue only once its result is recorded (acks late). Implemented on the metadata store
/// (embedded mode: Skiff.Server's <c>StoreTaskQueue</c>, leases with a visibility timeout) and on RabbitMQ (scale-out:
/// Skiff.Agent's <c>RabbitMqTaskQueue</c>, quorum queues). Both pass one test suite.
/// </summary>
/// <remarks>
/// <para>
/// Delivery is at least once: a task whose worker dies, or fails it, is delivered again, with its
/// <see cref="TaskDelivery.DeliveryCount"/> one higher; a task delivered more often than the queue's delivery limit is
/// dead-lettered (its result records the failure and the last error) instead of being delivered again. The result
/// counts once: of several deliveries of one task that complete, the first completion's result is kept and the others
/// are told they were duplicates. A task's <see cref="TaskMessage.Id"/> is also its side-effect key, given to the task
/// so that it can make its effects idempotent.
/// </para>
/// <para>Safe to call from many threads at once.</para>
/// </remarks>
internal interface ITaskQueue : IAsyncDisposable
{
    /// <summary>
    /// Puts a task on <paramref name="pool"/>'s queue. When this returns the task is durable: it survives a crash or
    /// restart of the queue (committed to the store; confirmed by the broker). A task whose id already has a result is
    /// not queued again.
    /// </summary>
    /// <exception cref="ArgumentException">The pool name or task id is empty.</exception>
    /// <exception cref="TaskQueueUnavailableException">The store or broker cannot be reached; the task may or may not be queued, and publishing it again is safe.</exception>
    Task PublishAsync(string pool, TaskMessage task, CancellationToken cancellationToken);

    /// <summary>
    /// Starts consuming <paramref name="pool"/>'s tasks for one worker. The consumer holds at most
    /// <see cref="ConsumeOptions.Prefetch"/> deliveries that are neither completed nor failed.
    /// </summary>
    Task<ITaskConsumer> ConsumeAsync(string pool, ConsumeOptions options, CancellationToken cancellationToken);

    /// <summary>How many of <paramref name="pool"/>'s tasks wait to be delivered and how many are delivered and not yet settled.</summary>
    Task<PoolTaskCounts> CountAsync(string pool, CancellationToken cancellationToken);

    /// <summary>The recorded result of a task (completed, or dead-lettered with its last error), or null while it has none.</summary>
    Task<TaskResult?> GetResultAsync(string taskId, CancellationToken cancellationToken);
}

/// <summary>One worker's subscription to a pool's queue. Disposing it returns the deliveries it holds unsettled to the queue.</summary>
internal interface ITaskConsumer : IAsyncDisposable
{
    /// <summary>Waits for the next delivery; never more than the prefetch are held unsettled at once.</summary>
    ValueTask<TaskDelivery> ReceiveAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Records <paramref name="result"/> as the task's result, durably, and only then acknowledges the delivery. Returns
    /// false when the task already had a result (an earlier delivery completed it): the recorded one is kept.
    /// </summary>
    Task<bool> CompleteAsync(TaskDelivery delivery, byte[] result, CancellationToken cancellationToken);

    /// <summary>
    /// Gives a delivery back as failed with <paramref name="error"/>: the task is delivered again, carrying the error as
    /// <see cref="TaskDelivery.PreviousError"/>, or, when this was its last allowed delivery, dead-lettered with it.
    /// </summary>
    Task FailAsync(TaskDelivery delivery, string error, CancellationToken cancellationToken);
}

/// <summary>A task as a caller publishes it.</summary>
/// <param name="Id">Unique per task, chosen by the caller: the task's idempotency and side-effect key.</param>
/// <param name="Payload">The task's input, as the caller encoded it.</param>
/// <param name="Headers">What travels with it: the calling run, op, pinned release (see <see cref="TaskHeaders"/>).</param>
internal sealed record TaskMessage(string Id, byte[] Payload, IReadOnlyDictionary<string, string> Headers)
{
    public TaskMessage(string id, byte[] payload)
        : this(id, payload, new Dictionary<string, string>())
    {
    }
}

/// <summary>Names of the headers Skiff itself puts on a task.</summary>
internal static class TaskHeaders
{
    public const string CallerRun = "skiff-caller-run";
    public const string CallerOp = "skiff-caller-op";
    public const string Task = "skiff-task";
    public const string PinnedRelease = "skiff-release";
    public const string TaskId = "skiff-task-id";
    public const string CallerAttempt = "skiff-caller-attempt";

    /// <summary>The agent whose run made the call: the server holding it is where the task's live events go.</summary>
    public const string CallerAgent = "skiff-caller-agent";
    public const string Traceparent = "traceparent";
}

/// <summary>
/// A task as a worker receives it. <see cref="DeliveryCount"/> is 1 the first time; <see cref="LastError"/> is the last
/// error a delivery of it reported (null when none did), reported by delivery <see cref="LastErrorDelivery"/>: what it is
/// dead-lettered with when its last allowed delivery ends without a word.
/// </summary>
internal sealed record TaskDelivery(string Pool, TaskMessage Task, int DeliveryCount, string? LastError, int? LastErrorDelivery)
{
    /// <summary>
    /// What the previous delivery failed with: <see cref="LastError"/> when that delivery reported it; null the first time,
    /// and when the previous delivery ended without a word (its worker died or stopped, its lease ran out, its connection
    /// closed), even if an earlier one reported an error.
    /// </summary>
    public string? PreviousError => LastErrorDelivery == DeliveryCount - 1 ? LastError : null;

    /// <summary>What the implementation needs to settle this delivery (a lease holder, a broker delivery tag).</summary>
    internal object? Token { get; init; }
}

/// <summary>A worker's consumer settings.</summary>
internal sealed record ConsumeOptions
{
    /// <summary>At most this many deliveries held at once, neither completed nor failed. 1 (the default) takes a task only when the previous one is settled.</summary>
    public int Prefetch { get; init; } = 1;

    /// <summary>Names the worker in leases and broker connections (an agent name, a replica); for people reading them.</summary>
    public string Worker { get; init; } = "worker";

    public void Validate()
    {
        if (Prefetch is < 1 or > 1000)
        {
            throw new ArgumentOutOfRangeException(nameof(Prefetch), Prefetch, "a consumer's prefetch must be between 1 and 1000.");
        }

        ArgumentException.ThrowIfNullOrEmpty(Worker, nameof(Worker));
    }
}

/// <summary>
/// A pool's tasks by state: <see cref="Ready"/> wait for a worker, <see cref="InFlight"/> are delivered and not yet
/// settled. Their sum is what a pool scales on (skiff_pool_tasks_ready, skiff_pool_tasks_in_flight).
/// </summary>
internal readonly record struct PoolTaskCounts(long Ready, long InFlight);

/// <summary>
/// A task's recorded end: its worker's output when <see cref="Succeeded"/>, otherwise the error it was dead-lettered
/// with. <see cref="Deliveries"/> is how often it was delivered up to then.
/// </summary>
internal sealed record TaskResult(string TaskId, string Pool, bool Succeeded, byte[]? Payload, string? Error, int Deliveries, DateTimeOffset RecordedAt);
