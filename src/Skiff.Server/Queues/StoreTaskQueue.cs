using System.Collections.Concurrent;
using Skiff.Core.Queues;
using Skiff.Server.Metadata;

namespace Skiff.Server.Queues;

/// <summary>
/// The task queue embedded mode uses: the metadata store's own tables (SQLite or PostgreSQL), with leases. A consumer
/// leases tasks for <see cref="StoreTaskQueueOptions.VisibilityTimeout"/> and renews the leases of what it holds every
/// third of it; a worker that dies stops renewing, and its tasks become ready again when their leases run out.
/// </summary>
/// <remarks>
/// Idle consumers wait for a publish or settle in this process (<see cref="TaskWakeups"/>, shared by the queues of one
/// process), and otherwise look again every <see cref="StoreTaskQueueOptions.PollInterval"/>: a publish by another process
/// on the same PostgreSQL database is seen within that interval.
/// </remarks>
internal sealed class StoreTaskQueue(IMetadataStore store, TimeProvider time, StoreTaskQueueOptions options) : ITaskQueue
{
    private readonly IMetadataStore _store = store;
    private readonly TimeProvider _time = time;
    private readonly StoreTaskQueueOptions _options = options;
    private readonly ConcurrentDictionary<Consumer, byte> _consumers = new();

    public async Task PublishAsync(string pool, TaskMessage task, CancellationToken cancellationToken)
    {
        await _store.EnqueueTaskAsync(pool, task, cancellationToken).ConfigureAwait(false);
        _options.Wakeups.Pulse(pool);
    }

    public Task<ITaskConsumer> ConsumeAsync(string pool, ConsumeOptions consume, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        ArgumentNullException.ThrowIfNull(consume);
        consume.Validate();
        var consumer = new Consumer(this, pool, consume);
        _consumers[consumer] = 0;
        return Task.FromResult<ITaskConsumer>(consumer);
    }

    public Task<PoolTaskCounts> CountAsync(string pool, CancellationToken cancellationToken) => _store.CountTasksAsync(pool, cancellationToken);

    public Task<TaskResult?> GetResultAsync(string taskId, CancellationToken cancellationToken) => _store.GetTaskResultAsync(taskId, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        foreach (var consumer in _consumers.Keys)
        {
            await consumer.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// What a crash of this process does to its consumers: they stop renewing and settle nothing, and what they hold
    /// comes back only when its leases run out.
    /// </summary>
    internal void Crash()
    {
        foreach (var consumer in _consumers.Keys)
        {
            consumer.Abandon();
        }
    }

    private sealed class Consumer : ITaskConsumer
    {
        private readonly StoreTaskQueue _queue;
        private readonly string _pool;
        private readonly ConsumeOptions _options;
        private readonly string _holder;
        private readonly ConcurrentDictionary<string, TaskDelivery> _held = new(StringComparer.Ordinal);
        private readonly ConcurrentQueue<TaskDelivery> _leased = new();
        private readonly ITimer _renewal;
        private readonly SemaphoreSlim _receiving = new(1, 1);
        private readonly CancellationTokenSource _stopped = new();
        private int _renewing;

        public Consumer(StoreTaskQueue queue, string pool, ConsumeOptions options)
        {
            _queue = queue;
            _pool = pool;
            _options = options;
            _holder = $"{options.Worker}/{Guid.NewGuid():N}";
            var every = queue._options.VisibilityTimeout / 3;
            _renewal = queue._time.CreateTimer(_ => Renew(), null, every, every);
        }

        private IMetadataStore Store => _queue._store;

        private StoreTaskQueueOptions QueueOptions => _queue._options;

        public async ValueTask<TaskDelivery> ReceiveAsync(CancellationToken cancellationToken)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopped.Token);
            var token = linked.Token;
            await _receiving.WaitAsync(token).ConfigureAwait(false);
            try
            {
                while (true)
                {
                    // Taken before looking, so a publish or settle while the store is read is not missed.
                    var wake = QueueOptions.Wakeups.Next(_pool);
                    if (_leased.TryDequeue(out var next))
                    {
                        return next;
                    }

                    var room = _options.Prefetch - _held.Count;
                    if (room > 0)
                    {
                        var leased = await Store.LeaseTasksAsync(_pool, _holder, QueueOptions.VisibilityTimeout, room, QueueOptions.DeliveryLimit, token).ConfigureAwait(false);
                        foreach (var delivery in leased)
                        {
                            _held[delivery.Task.Id] = delivery;
                            _leased.Enqueue(delivery);
                        }

                        if (leased.Count > 0)
                        {
                            continue;
                        }
                    }

                    await Task.WhenAny(wake, Task.Delay(QueueOptions.PollInterval, _queue._time, token)).ConfigureAwait(false);
                    token.ThrowIfCancellationRequested();
                }
            }
            finally
            {
                _receiving.Release();
            }
        }

        public async Task<bool> CompleteAsync(TaskDelivery delivery, byte[] result, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(delivery);
            ArgumentNullException.ThrowIfNull(result);
            var recorded = await Store.RecordTaskResultAsync(
                new TaskResult(delivery.Task.Id, _pool, Succeeded: true, result, Error: null, delivery.DeliveryCount, _queue._time.GetUtcNow()),
                cancellationToken).ConfigureAwait(false);
            Settled(delivery);
            return recorded;
        }

        public async Task FailAsync(TaskDelivery delivery, string error, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(delivery);
            ArgumentException.ThrowIfNullOrEmpty(error);
            await Store.FailTaskAsync(delivery.Task.Id, _holder, error, QueueOptions.DeliveryLimit, cancellationToken).ConfigureAwait(false);
            Settled(delivery);
        }

        private void Settled(TaskDelivery delivery)
        {
            _held.TryRemove(delivery.Task.Id, out _);

            // This consumer may take another now; so may others, if the task is ready again.
            QueueOptions.Wakeups.Pulse(_pool);
        }

        private void Renew()
        {
            if (_held.IsEmpty || Interlocked.Exchange(ref _renewing, 1) == 1)
            {
                return;
            }

            _ = RenewAsync();

            async Task RenewAsync()
            {
                try
                {
                    foreach (var id in _held.Keys)
                    {
                        // A lease lost (another worker took the task after it ran out) is not fatal here: completing it
                        // still counts once, and a second completion is told it was a duplicate.
                        await Store.RenewTaskLeaseAsync(id, _holder, QueueOptions.VisibilityTimeout, _stopped.Token).ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or MetadataStoreException)
                {
                    // The next tick tries again; a store away longer than the visibility timeout loses the leases, and
                    // the tasks are delivered again: at least once.
                }
                finally
                {
                    Volatile.Write(ref _renewing, 0);
                }
            }
        }

        public void Abandon()
        {
            _renewal.Dispose();
            _stopped.Cancel();
        }

        public async ValueTask DisposeAsync()
        {
            if (!_queue._consumers.TryRemove(this, out _))
            {
                return;
            }

            var crashed = _stopped.IsCancellationRequested;
            Abandon();
            if (!crashed)
            {
                foreach (var id in _held.Keys)
                {
                    await Store.ReleaseTaskAsync(id, _holder, CancellationToken.None).ConfigureAwait(false);
                }

                QueueOptions.Wakeups.Pulse(_pool);
            }

            _held.Clear();
        }
    }
}

/// <summary>The embedded queue's settings; the defaults suit a server.</summary>
internal sealed record StoreTaskQueueOptions
{
    /// <summary>How long a leased task stays with its worker without a renewal before it is ready again. Default 30 s.</summary>
    public TimeSpan VisibilityTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Deliveries of one task before it is dead-lettered. Default 5.</summary>
    public int DeliveryLimit { get; init; } = 5;

    /// <summary>How often an idle consumer looks for tasks published by other processes. Default 1 s.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Wakes this process's idle consumers of a pool when a task is published or settled here.</summary>
    public TaskWakeups Wakeups { get; init; } = new();
}

/// <summary>Per pool, a signal that tasks may be ready: completed and replaced on each pulse.</summary>
internal sealed class TaskWakeups
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _signals = new(StringComparer.Ordinal);

    /// <summary>A task that completes at the pool's next pulse.</summary>
    public Task Next(string pool) => _signals.GetOrAdd(pool, _ => NewSignal()).Task;

    public void Pulse(string pool)
    {
        if (_signals.TryRemove(pool, out var signal))
        {
            signal.TrySetResult();
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
