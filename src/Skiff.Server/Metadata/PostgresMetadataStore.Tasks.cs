using System.Text.Json;
using Npgsql;
using Skiff.Core.Queues;

namespace Skiff.Server.Metadata;

/// <remarks>
/// The embedded task queue on PostgreSQL. Servers lease at once: a lease locks the rows it takes and skips rows another
/// server has locked (FOR UPDATE SKIP LOCKED), so each task goes to one; settling a task is a conditional update on its
/// holder, and a result is an insert that does nothing on a conflict.
/// </remarks>
internal sealed partial class PostgresMetadataStore
{
    public Task<bool> EnqueueTaskAsync(string pool, TaskMessage task, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        ArgumentNullException.ThrowIfNull(task);
        ArgumentException.ThrowIfNullOrEmpty(task.Id, nameof(task));
        var now = Now();
        return WithoutTransactionAsync(
            async connection => await ExecuteAsync(
                Sql(
                    connection,
                    """
                    INSERT INTO tasks (id, pool, payload, headers_json, published_at, deliveries)
                    SELECT @id, @pool, @payload, @headers, @now, 0
                    WHERE NOT EXISTS (SELECT 1 FROM task_results WHERE task_id = @id)
                    ON CONFLICT (id) DO NOTHING;
                    """,
                    ("@id", task.Id),
                    ("@pool", pool),
                    ("@payload", task.Payload),
                    ("@headers", JsonSerializer.Serialize(task.Headers)),
                    ("@now", now)),
                cancellationToken).ConfigureAwait(false) == 1,
            cancellationToken);
    }

    public Task<IReadOnlyList<TaskDelivery>> LeaseTasksAsync(string pool, string holder, TimeSpan lease, int limit, int deliveryLimit, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(deliveryLimit);
        var now = Now();
        return WriteAsync(
            async transaction =>
            {
                // A task whose worker stopped renewing after its last allowed delivery is dead-lettered, not delivered again.
                var dead = await ListAsync(
                    Sql(
                        transaction,
                        """
                        DELETE FROM tasks WHERE id IN (
                            SELECT id FROM tasks WHERE pool = @pool AND leased_until <= @now AND deliveries >= @limit FOR UPDATE SKIP LOCKED)
                        RETURNING id, deliveries, last_error;
                        """,
                        ("@pool", pool),
                        ("@now", now),
                        ("@limit", deliveryLimit)),
                    reader => (Id: reader.GetString(0), Deliveries: reader.GetInt32(1), LastError: ReadNullableString(reader, 2)),
                    cancellationToken).ConfigureAwait(false);
                foreach (var task in dead)
                {
                    await InsertResultAsync(
                        transaction,
                        new TaskResult(task.Id, pool, Succeeded: false, Payload: null, TaskQueueErrors.LeaseRanOut(task.Id, task.Deliveries, task.LastError), task.Deliveries, now),
                        brokerCopy: false,
                        cancellationToken).ConfigureAwait(false);
                }

                var leased = await ListAsync(
                    Sql(
                        transaction,
                        """
                        WITH ready AS (
                            SELECT id FROM tasks
                            WHERE pool = @pool AND (leased_until IS NULL OR leased_until <= @now)
                            ORDER BY seq LIMIT @limit
                            FOR UPDATE SKIP LOCKED)
                        UPDATE tasks t SET leased_by = @holder, leased_until = @until, deliveries = t.deliveries + 1
                        FROM ready WHERE t.id = ready.id
                        RETURNING t.id, t.payload, t.headers_json, t.deliveries, t.last_error, t.last_error_delivery, t.seq;
                        """,
                        ("@pool", pool),
                        ("@now", now),
                        ("@limit", limit),
                        ("@holder", holder),
                        ("@until", now + lease)),
                    reader => (Delivery: new TaskDelivery(
                        pool,
                        new TaskMessage(reader.GetString(0), reader.GetFieldValue<byte[]>(1), ReadHeaders(reader.GetString(2))),
                        reader.GetInt32(3),
                        ReadNullableString(reader, 4),
                        reader.IsDBNull(5) ? null : reader.GetInt32(5)) { Token = holder }, Seq: reader.GetInt64(6)),
                    cancellationToken).ConfigureAwait(false);

                // RETURNING gives no order; the oldest go first.
                return (IReadOnlyList<TaskDelivery>)[.. leased.OrderBy(l => l.Seq).Select(l => l.Delivery)];
            },
            cancellationToken);
    }

    public Task<bool> RenewTaskLeaseAsync(string taskId, string holder, TimeSpan lease, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
        var until = Now() + lease;
        return WithoutTransactionAsync(
            async connection => await ExecuteAsync(
                Sql(connection, "UPDATE tasks SET leased_until = @until WHERE id = @id AND leased_by = @holder;", ("@until", until), ("@id", taskId), ("@holder", holder)),
                cancellationToken).ConfigureAwait(false) == 1,
            cancellationToken);
    }

    public Task<bool> FailTaskAsync(string taskId, string holder, string error, int deliveryLimit, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentNullException.ThrowIfNull(error);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(deliveryLimit);
        var now = Now();
        return WriteAsync(
            async transaction =>
            {
                var held = await ListAsync(
                    Sql(transaction, "SELECT pool, deliveries FROM tasks WHERE id = @id AND leased_by = @holder FOR UPDATE;", ("@id", taskId), ("@holder", holder)),
                    reader => (Pool: reader.GetString(0), Deliveries: reader.GetInt32(1)),
                    cancellationToken).ConfigureAwait(false);
                if (held.Count == 0)
                {
                    return false;
                }

                var (pool, deliveries) = held[0];
                if (deliveries >= deliveryLimit)
                {
                    await InsertResultAsync(transaction, new TaskResult(taskId, pool, Succeeded: false, Payload: null, error, deliveries, now), brokerCopy: false, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await ExecuteAsync(
                        Sql(transaction, "UPDATE tasks SET last_error = @error, last_error_delivery = deliveries, leased_by = NULL, leased_until = NULL WHERE id = @id;", ("@error", error), ("@id", taskId)),
                        cancellationToken).ConfigureAwait(false);
                }

                return true;
            },
            cancellationToken);
    }

    public Task<bool> ReleaseTaskAsync(string taskId, string holder, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        return WithoutTransactionAsync(
            async connection => await ExecuteAsync(
                Sql(connection, "UPDATE tasks SET leased_by = NULL, leased_until = NULL WHERE id = @id AND leased_by = @holder;", ("@id", taskId), ("@holder", holder)),
                cancellationToken).ConfigureAwait(false) == 1,
            cancellationToken);
    }

    public Task<PoolTaskCounts> CountTasksAsync(string pool, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        var now = Now();
        return ReadAsync(
            async connection =>
            {
                var counts = await ListAsync(
                    Sql(
                        connection,
                        """
                        SELECT count(*) FILTER (WHERE leased_until IS NULL OR leased_until <= @now), count(*) FILTER (WHERE leased_until > @now)
                        FROM tasks WHERE pool = @pool;
                        """,
                        ("@pool", pool),
                        ("@now", now)),
                    reader => new PoolTaskCounts(reader.GetInt64(0), reader.GetInt64(1)),
                    cancellationToken).ConfigureAwait(false);
                return counts[0];
            },
            cancellationToken);
    }

    public Task<bool> RecordTaskResultAsync(TaskResult result, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentException.ThrowIfNullOrEmpty(result.TaskId, nameof(result));
        ArgumentException.ThrowIfNullOrEmpty(result.Pool, nameof(result));
        return WriteAsync(transaction => InsertResultAsync(transaction, result, brokerCopy: false, cancellationToken), cancellationToken);
    }

    public Task<bool> RecordCanceledOnBrokerAsync(TaskResult result, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentException.ThrowIfNullOrEmpty(result.TaskId, nameof(result));
        ArgumentException.ThrowIfNullOrEmpty(result.Pool, nameof(result));
        return WriteAsync(transaction => InsertResultAsync(transaction, result, brokerCopy: true, cancellationToken), cancellationToken);
    }

    public Task<long> CountBrokerCopiesAsync(string pool, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        return ReadAsync(
            async connection =>
            {
                using var command = Sql(connection, "SELECT count(*) FROM task_results WHERE pool = @pool AND broker_copy = true;", ("@pool", pool));
                return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            },
            cancellationToken);
    }

    public Task<IReadOnlySet<string>> ListTaskResultIdsAsync(IReadOnlyCollection<string> taskIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        var ids = taskIds.ToArray();
        return ReadAsync<IReadOnlySet<string>>(
            async connection => (await ListAsync(
                Sql(connection, "SELECT task_id FROM task_results WHERE task_id = ANY(@ids);", ("@ids", ids)),
                reader => reader.GetString(0),
                cancellationToken).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal),
            cancellationToken);
    }

    public Task<TaskResult?> GetTaskResultAsync(string taskId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        return ReadAsync(
            connection => SingleOrNullAsync(
                Sql(connection, "SELECT task_id, pool, succeeded, payload, error, deliveries, recorded_at FROM task_results WHERE task_id = @id;", ("@id", taskId)),
                reader => new TaskResult(
                    reader.GetString(0),
                    reader.GetString(1),
                    reader.GetBoolean(2),
                    reader.IsDBNull(3) ? null : reader.GetFieldValue<byte[]>(3),
                    ReadNullableString(reader, 4),
                    reader.GetInt32(5),
                    ReadTime(reader, 6)),
                cancellationToken),
            cancellationToken);
    }

    public Task<bool> HoldTaskAsync(TaskDelivery delivery, string holder, TimeSpan lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
        var now = Now();
        return WithoutTransactionAsync(
            async connection => await ExecuteAsync(
                Sql(
                    connection,
                    """
                    INSERT INTO tasks (id, pool, payload, headers_json, published_at, deliveries, last_error, last_error_delivery, leased_by, leased_until)
                    SELECT @id, @pool, @payload, @headers, @now, @deliveries, @error, @errorDelivery::integer, @holder, @until
                    WHERE NOT EXISTS (SELECT 1 FROM task_results WHERE task_id = @id)
                    ON CONFLICT (id) DO NOTHING;
                    """,
                    ("@id", delivery.Task.Id),
                    ("@pool", delivery.Pool),
                    ("@payload", delivery.Task.Payload),
                    ("@headers", JsonSerializer.Serialize(delivery.Task.Headers)),
                    ("@now", now),
                    ("@deliveries", delivery.DeliveryCount),
                    ("@error", delivery.LastError),
                    ("@errorDelivery", delivery.LastErrorDelivery),
                    ("@holder", holder),
                    ("@until", now + lease)),
                cancellationToken).ConfigureAwait(false) == 1,
            cancellationToken);
    }

    public Task<bool> HasTaskAsync(string taskId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        return ReadAsync(connection => ExistsAsync(Sql(connection, "SELECT 1 FROM tasks WHERE id = @id;", ("@id", taskId)), cancellationToken), cancellationToken);
    }

    public async Task<string?> GetTaskHolderAsync(string taskId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        var holders = await ReadAsync(
            connection => ListAsync(Sql(connection, "SELECT leased_by FROM tasks WHERE id = @id;", ("@id", taskId)), reader => ReadNullableString(reader, 0), cancellationToken),
            cancellationToken).ConfigureAwait(false);
        return holders.FirstOrDefault();
    }

    public Task<bool> RemoveTaskAsync(string taskId, string holder, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        return WithoutTransactionAsync(
            async connection => await ExecuteAsync(
                Sql(connection, "DELETE FROM tasks WHERE id = @id AND leased_by = @holder;", ("@id", taskId), ("@holder", holder)),
                cancellationToken).ConfigureAwait(false) == 1,
            cancellationToken);
    }

    /// <summary>
    /// Records the result unless one is recorded, and takes the task off the queue either way: a task with a result is done.
    /// A result recorded before that left a copy on the broker (<see cref="RecordCanceledOnBrokerAsync"/>) no longer does.
    /// </summary>
    private static async Task<bool> InsertResultAsync(NpgsqlTransaction transaction, TaskResult result, bool brokerCopy, CancellationToken cancellationToken)
    {
        var recorded = await ExecuteAsync(
            Sql(
                transaction,
                """
                INSERT INTO task_results (task_id, pool, succeeded, payload, error, deliveries, recorded_at, broker_copy)
                VALUES (@id, @pool, @succeeded, @payload, @error, @deliveries, @at, @brokerCopy) ON CONFLICT (task_id) DO NOTHING;
                """,
                ("@id", result.TaskId),
                ("@pool", result.Pool),
                ("@succeeded", result.Succeeded),
                ("@payload", result.Payload),
                ("@error", result.Error),
                ("@deliveries", result.Deliveries),
                ("@at", Time(result.RecordedAt)),
                ("@brokerCopy", brokerCopy)),
            cancellationToken).ConfigureAwait(false) == 1;
        await ExecuteAsync(Sql(transaction, "DELETE FROM tasks WHERE id = @id;", ("@id", result.TaskId)), cancellationToken).ConfigureAwait(false);
        if (!recorded && !brokerCopy)
        {
            // A worker took a canceled call's copy off the broker and settled it: it is no longer there.
            await ExecuteAsync(Sql(transaction, "UPDATE task_results SET broker_copy = false WHERE task_id = @id AND broker_copy = true;", ("@id", result.TaskId)), cancellationToken).ConfigureAwait(false);
        }

        return recorded;
    }

    private static Dictionary<string, string> ReadHeaders(string json) => JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [];
}
