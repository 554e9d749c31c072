using System.Text.Json;
using Microsoft.Data.Sqlite;
using Skiff.Core.Queues;

namespace Skiff.Server.Metadata;

/// <remarks>
/// The embedded task queue. One writer holds the file at a time, so reading which tasks are ready and leasing them
/// cannot interleave with another lease, in this process (the write gate) or another (the IMMEDIATE transaction).
/// </remarks>
internal sealed partial class SqliteMetadataStore
{
    public Task<bool> EnqueueTaskAsync(string pool, TaskMessage task, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        ArgumentNullException.ThrowIfNull(task);
        ArgumentException.ThrowIfNullOrEmpty(task.Id, nameof(task));
        return WriteAsync(
            async transaction =>
            {
                if (await ExistsAsync(Sql(transaction, "SELECT 1 FROM task_results WHERE task_id = $id;", ("$id", task.Id)), cancellationToken).ConfigureAwait(false))
                {
                    return false;
                }

                return await ExecuteAsync(
                    Sql(
                        transaction,
                        """
                        INSERT INTO tasks (id, pool, payload, headers_json, published_at, deliveries)
                        VALUES ($id, $pool, $payload, $headers, $now, 0) ON CONFLICT (id) DO NOTHING;
                        """,
                        ("$id", task.Id),
                        ("$pool", pool),
                        ("$payload", task.Payload),
                        ("$headers", JsonSerializer.Serialize(task.Headers)),
                        ("$now", Now())),
                    cancellationToken).ConfigureAwait(false) == 1;
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<TaskDelivery>> LeaseTasksAsync(string pool, string holder, TimeSpan lease, int limit, int deliveryLimit, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(deliveryLimit);
        var now = _time.GetUtcNow();
        return LeaseAsync();

        async Task<IReadOnlyList<TaskDelivery>> LeaseAsync()
        {
            // Workers ask whenever they are idle; a read first keeps the usual idle answer off the single write lock.
            var anyReady = await ReadAsync(
                connection => ExistsAsync(
                    Sql(connection, "SELECT 1 FROM tasks WHERE pool = $pool AND (leased_until IS NULL OR leased_until <= $now) LIMIT 1;", ("$pool", pool), ("$now", Time(now))),
                    cancellationToken),
                cancellationToken).ConfigureAwait(false);
            if (!anyReady)
            {
                return [];
            }

            return await WriteAsync(
                async transaction =>
                {
                    // A task whose worker stopped renewing after its last allowed delivery is dead-lettered, not delivered again.
                    var dead = await ListAsync(
                        Sql(
                            transaction,
                            "SELECT id, deliveries, last_error FROM tasks WHERE pool = $pool AND leased_until <= $now AND deliveries >= $limit;",
                            ("$pool", pool),
                            ("$now", Time(now)),
                            ("$limit", deliveryLimit)),
                        reader => (Id: reader.GetString(0), Deliveries: reader.GetInt32(1), LastError: ReadNullableString(reader, 2)),
                        cancellationToken).ConfigureAwait(false);
                    foreach (var task in dead)
                    {
                        await DeadLetterAsync(transaction, task.Id, pool, task.Deliveries, TaskQueueErrors.LeaseRanOut(task.Id, task.Deliveries, task.LastError), now, cancellationToken).ConfigureAwait(false);
                    }

                    var ready = await ListAsync(
                        Sql(
                            transaction,
                            """
                            SELECT id, payload, headers_json, deliveries, last_error, last_error_delivery FROM tasks
                            WHERE pool = $pool AND (leased_until IS NULL OR leased_until <= $now)
                            ORDER BY seq LIMIT $limit;
                            """,
                            ("$pool", pool),
                            ("$now", Time(now)),
                            ("$limit", limit)),
                        reader => new TaskDelivery(
                            pool,
                            new TaskMessage(reader.GetString(0), (byte[])reader.GetValue(1), ReadHeaders(reader.GetString(2))),
                            reader.GetInt32(3) + 1,
                            ReadNullableString(reader, 4),
                            reader.IsDBNull(5) ? null : reader.GetInt32(5)) { Token = holder },
                        cancellationToken).ConfigureAwait(false);
                    foreach (var delivery in ready)
                    {
                        await ExecuteAsync(
                            Sql(
                                transaction,
                                "UPDATE tasks SET leased_by = $holder, leased_until = $until, deliveries = deliveries + 1 WHERE id = $id;",
                                ("$holder", holder),
                                ("$until", Time(now + lease)),
                                ("$id", delivery.Task.Id)),
                            cancellationToken).ConfigureAwait(false);
                    }

                    return ready;
                },
                cancellationToken).ConfigureAwait(false);
        }
    }

    public Task<bool> RenewTaskLeaseAsync(string taskId, string holder, TimeSpan lease, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
        return WriteAsync(
            async transaction => await ExecuteAsync(
                Sql(
                    transaction,
                    "UPDATE tasks SET leased_until = $until WHERE id = $id AND leased_by = $holder;",
                    ("$until", Time(_time.GetUtcNow() + lease)),
                    ("$id", taskId),
                    ("$holder", holder)),
                cancellationToken).ConfigureAwait(false) == 1,
            cancellationToken);
    }

    public Task<bool> FailTaskAsync(string taskId, string holder, string error, int deliveryLimit, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentNullException.ThrowIfNull(error);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(deliveryLimit);
        return WriteAsync(
            async transaction =>
            {
                var held = await SingleOrNullAsync(
                    Sql(transaction, "SELECT pool, deliveries FROM tasks WHERE id = $id AND leased_by = $holder;", ("$id", taskId), ("$holder", holder)),
                    reader => Tuple.Create(reader.GetString(0), reader.GetInt32(1)), cancellationToken).ConfigureAwait(false);
                if (held is null)
                {
                    return false;
                }

                var (pool, deliveries) = held;
                if (deliveries >= deliveryLimit)
                {
                    await DeadLetterAsync(transaction, taskId, pool, deliveries, error, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await ExecuteAsync(
                        Sql(transaction, "UPDATE tasks SET last_error = $error, last_error_delivery = deliveries, leased_by = NULL, leased_until = NULL WHERE id = $id;", ("$error", error), ("$id", taskId)),
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
        return WriteAsync(
            async transaction => await ExecuteAsync(
                Sql(transaction, "UPDATE tasks SET leased_by = NULL, leased_until = NULL WHERE id = $id AND leased_by = $holder;", ("$id", taskId), ("$holder", holder)),
                cancellationToken).ConfigureAwait(false) == 1,
            cancellationToken);
    }

    public Task<PoolTaskCounts> CountTasksAsync(string pool, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        var now = Time(_time.GetUtcNow());
        return ReadAsync(
            async connection =>
            {
                using var command = Sql(
                    connection,
                    """
                    SELECT coalesce(sum(leased_until IS NULL OR leased_until <= $now), 0), coalesce(sum(leased_until > $now), 0)
                    FROM tasks WHERE pool = $pool;
                    """,
                    ("$pool", pool),
                    ("$now", now));
                using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                return new PoolTaskCounts(reader.GetInt64(0), reader.GetInt64(1));
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
                using var command = Sql(connection, "SELECT count(*) FROM task_results WHERE pool = $pool AND broker_copy = 1;", ("$pool", pool));
                return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            },
            cancellationToken);
    }

    public Task<IReadOnlySet<string>> ListTaskResultIdsAsync(IReadOnlyCollection<string> taskIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        var ids = new System.Text.Json.Nodes.JsonArray([.. taskIds.Select(id => (System.Text.Json.Nodes.JsonNode?)id)]).ToJsonString();
        return ReadAsync<IReadOnlySet<string>>(
            async connection => (await ListAsync(
                Sql(connection, "SELECT task_id FROM task_results WHERE task_id IN (SELECT value FROM json_each($ids));", ("$ids", ids)),
                reader => reader.GetString(0),
                cancellationToken).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal),
            cancellationToken);
    }

    public Task<TaskResult?> GetTaskResultAsync(string taskId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        return ReadAsync(
            connection => SingleOrNullAsync(
                Sql(connection, "SELECT task_id, pool, succeeded, payload, error, deliveries, recorded_at FROM task_results WHERE task_id = $id;", ("$id", taskId)),
                reader => new TaskResult(
                    reader.GetString(0),
                    reader.GetString(1),
                    reader.GetInt64(2) != 0,
                    reader.IsDBNull(3) ? null : (byte[])reader.GetValue(3),
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
        var now = _time.GetUtcNow();
        return WriteAsync(
            async transaction =>
            {
                if (await ExistsAsync(Sql(transaction, "SELECT 1 FROM task_results WHERE task_id = $id;", ("$id", delivery.Task.Id)), cancellationToken).ConfigureAwait(false))
                {
                    return false;
                }

                return await ExecuteAsync(
                    Sql(
                        transaction,
                        """
                        INSERT INTO tasks (id, pool, payload, headers_json, published_at, deliveries, last_error, last_error_delivery, leased_by, leased_until)
                        VALUES ($id, $pool, $payload, $headers, $now, $deliveries, $error, $errorDelivery, $holder, $until) ON CONFLICT (id) DO NOTHING;
                        """,
                        ("$id", delivery.Task.Id),
                        ("$pool", delivery.Pool),
                        ("$payload", delivery.Task.Payload),
                        ("$headers", JsonSerializer.Serialize(delivery.Task.Headers)),
                        ("$now", Time(now)),
                        ("$deliveries", delivery.DeliveryCount),
                        ("$error", delivery.LastError),
                        ("$errorDelivery", delivery.LastErrorDelivery),
                        ("$holder", holder),
                        ("$until", Time(now + lease))),
                    cancellationToken).ConfigureAwait(false) == 1;
            },
            cancellationToken);
    }

    public Task<bool> HasTaskAsync(string taskId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        return ReadAsync(connection => ExistsAsync(Sql(connection, "SELECT 1 FROM tasks WHERE id = $id;", ("$id", taskId)), cancellationToken), cancellationToken);
    }

    public async Task<string?> GetTaskHolderAsync(string taskId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        var holders = await ReadAsync(
            connection => ListAsync(Sql(connection, "SELECT leased_by FROM tasks WHERE id = $id;", ("$id", taskId)), reader => ReadNullableString(reader, 0), cancellationToken),
            cancellationToken).ConfigureAwait(false);
        return holders.FirstOrDefault();
    }

    public Task<bool> RemoveTaskAsync(string taskId, string holder, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ArgumentException.ThrowIfNullOrEmpty(holder);
        return WriteAsync(
            async transaction => await ExecuteAsync(
                Sql(transaction, "DELETE FROM tasks WHERE id = $id AND leased_by = $holder;", ("$id", taskId), ("$holder", holder)),
                cancellationToken).ConfigureAwait(false) == 1,
            cancellationToken);
    }

    private Task DeadLetterAsync(SqliteTransaction transaction, string taskId, string pool, int deliveries, string error, DateTimeOffset now, CancellationToken cancellationToken) =>
        InsertResultAsync(transaction, new TaskResult(taskId, pool, Succeeded: false, Payload: null, error, deliveries, now), brokerCopy: false, cancellationToken);

    /// <summary>
    /// Records the result unless one is recorded, and takes the task off the queue either way: a task with a result is done.
    /// A result recorded before that left a copy on the broker (<see cref="RecordCanceledOnBrokerAsync"/>) no longer does.
    /// </summary>
    private static async Task<bool> InsertResultAsync(SqliteTransaction transaction, TaskResult result, bool brokerCopy, CancellationToken cancellationToken)
    {
        var recorded = await ExecuteAsync(
            Sql(
                transaction,
                """
                INSERT INTO task_results (task_id, pool, succeeded, payload, error, deliveries, recorded_at, broker_copy)
                VALUES ($id, $pool, $succeeded, $payload, $error, $deliveries, $at, $brokerCopy) ON CONFLICT (task_id) DO NOTHING;
                """,
                ("$id", result.TaskId),
                ("$pool", result.Pool),
                ("$succeeded", result.Succeeded ? 1 : 0),
                ("$payload", result.Payload),
                ("$error", result.Error),
                ("$deliveries", result.Deliveries),
                ("$at", Time(result.RecordedAt)),
                ("$brokerCopy", brokerCopy ? 1 : 0)),
            cancellationToken).ConfigureAwait(false) == 1;
        await ExecuteAsync(Sql(transaction, "DELETE FROM tasks WHERE id = $id;", ("$id", result.TaskId)), cancellationToken).ConfigureAwait(false);
        if (!recorded && !brokerCopy)
        {
            // A worker took a canceled call's copy off the broker and settled it: it is no longer there.
            await ExecuteAsync(Sql(transaction, "UPDATE task_results SET broker_copy = 0 WHERE task_id = $id AND broker_copy = 1;", ("$id", result.TaskId)), cancellationToken).ConfigureAwait(false);
        }

        return recorded;
    }

    private static Dictionary<string, string> ReadHeaders(string json) => JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [];
}
