using Microsoft.Data.Sqlite;

namespace Skiff.Server.Metadata;

internal sealed partial class SqliteMetadataStore
{
    private const string SelectRun = "SELECT id, location, release, job, parameters_json, status, started_at, finished_at, reason, agent, started_by, queued_at, job_max_concurrent FROM runs";

    public Task CreateRunAsync(RunRecord run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentException.ThrowIfNullOrEmpty(run.Id, nameof(run));
        ArgumentException.ThrowIfNullOrEmpty(run.Job, nameof(run));
        ArgumentNullException.ThrowIfNull(run.ParametersJson, nameof(run));
        if (!RunStatuses.IsKnown(run.Status))
        {
            throw new ArgumentException($"'{run.Status}' is not a run status; expected one of the values in {nameof(RunStatuses)}.", nameof(run));
        }

        return WriteAsync(
            async transaction =>
            {
                if (await ExistsAsync(Sql(transaction, "SELECT 1 FROM runs WHERE id = $id;", ("$id", run.Id)), cancellationToken).ConfigureAwait(false))
                {
                    throw MetadataConflictException.DuplicateId("run", run.Id);
                }

                if (!await ExistsAsync(Sql(transaction, "SELECT 1 FROM locations WHERE name = $name;", ("$name", run.Location)), cancellationToken).ConfigureAwait(false))
                {
                    throw MetadataNotFoundException.Location(run.Location, $"run '{run.Id}'");
                }

                if (!await ExistsAsync(Sql(transaction, "SELECT 1 FROM releases WHERE id = $id;", ("$id", run.Release.ToString())), cancellationToken).ConfigureAwait(false))
                {
                    throw MetadataNotFoundException.Release(run.Release, $"run '{run.Id}'");
                }

                await ExecuteAsync(
                    Sql(
                        transaction,
                        """
                        INSERT INTO runs (id, location, release, job, parameters_json, status, started_at, finished_at, reason, agent)
                        VALUES ($id, $location, $release, $job, $parameters, $status, $startedAt, $finishedAt, $reason, $agent);
                        """,
                        ("$id", run.Id),
                        ("$location", run.Location),
                        ("$release", run.Release.ToString()),
                        ("$job", run.Job),
                        ("$parameters", run.ParametersJson),
                        ("$status", run.Status),
                        ("$startedAt", Time(run.StartedAt)),
                        ("$finishedAt", Time(run.FinishedAt)),
                        ("$reason", run.Reason),
                        ("$agent", run.Agent)),
                    cancellationToken).ConfigureAwait(false);

                // A run recorded as ended at once is an end like any other.
                if (RunStatuses.IsFinal(run.Status))
                {
                    await EnqueueRunEndedAsync(transaction, run.Id, cancellationToken).ConfigureAwait(false);
                }
            },
            cancellationToken);
    }

    public Task<bool> AppendRunEventAsync(string runId, long seq, string eventJson, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentNullException.ThrowIfNull(eventJson);
        return WriteAsync(
            async transaction =>
            {
                var stored = await ExecuteAsync(
                    Sql(
                        transaction,
                        "INSERT INTO run_events (run_id, seq, json) SELECT $runId, $seq, $json WHERE EXISTS (SELECT 1 FROM runs WHERE id = $runId AND status = $running) ON CONFLICT (run_id, seq) DO NOTHING;",
                        ("$runId", runId),
                        ("$seq", seq),
                        ("$json", eventJson),
                        ("$running", RunStatuses.Running)),
                    cancellationToken).ConfigureAwait(false);
                return stored == 1
                    || (await ExistsAsync(Sql(transaction, "SELECT 1 FROM runs WHERE id = $id;", ("$id", runId)), cancellationToken).ConfigureAwait(false)
                        ? false
                        : throw MetadataNotFoundException.Run(runId));
            },
            cancellationToken);
    }

    /// <remarks>
    /// One write transaction holds the file for the whole list, so each run's state is read once and stays true:
    /// the cost is one fsync per call instead of one per event. Each row goes in through one statement prepared for
    /// the call: a prepared statement's run costs little more than the row it writes.
    /// </remarks>
    public Task<IReadOnlyList<RunEventOutcome>> AppendRunEventsAsync(IReadOnlyList<RunEventToStore> events, CancellationToken cancellationToken)
    {
        RunEventToStore.CheckAll(events);
        return WriteAsync<IReadOnlyList<RunEventOutcome>>(
            async transaction =>
            {
                var outcomes = new RunEventOutcome[events.Count];

                // One statement, prepared once per batch and run per event with three parameters. A multi-row INSERT of
                // 100 events had 300 named parameters, and SQLite finds each one by name in a list (a strncmp per name
                // before it): 300 × 150 comparisons a statement, the largest single cost of storing events (bench events).
                await using var insert = Sql(
                    transaction,
                    "INSERT INTO run_events (run_id, seq, json) VALUES ($run, $seq, $json) ON CONFLICT (run_id, seq) DO NOTHING;",
                    ("$run", ""),
                    ("$seq", 0L),
                    ("$json", ""));
                var (run, seq, json) = (insert.Parameters["$run"], insert.Parameters["$seq"], insert.Parameters["$json"]);
                insert.Prepare();

                // Per run: true while running, false once ended, null when no run has the id.
                var running = new Dictionary<string, bool?>(StringComparer.Ordinal);
                for (var i = 0; i < events.Count; i++)
                {
                    var runEvent = events[i];
                    if (!running.TryGetValue(runEvent.RunId, out var isRunning))
                    {
                        await using var status = Sql(transaction, "SELECT status FROM runs WHERE id = $id;", ("$id", runEvent.RunId));
                        isRunning = await status.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string s ? s == RunStatuses.Running : null;
                        running[runEvent.RunId] = isRunning;
                    }

                    if (isRunning != true)
                    {
                        outcomes[i] = isRunning is null ? RunEventOutcome.UnknownRun : RunEventOutcome.Ignored;
                        continue;
                    }

                    (run.Value, seq.Value, json.Value) = (runEvent.RunId, runEvent.Seq, runEvent.Json);
                    // A (run, seq) already stored, or twice in the batch, changes no row: it was sent before.
                    outcomes[i] = await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1 ? RunEventOutcome.Stored : RunEventOutcome.Ignored;
                    if (runEvent.EndStatus is { } endStatus)
                    {
                        await EndAsync(transaction, runEvent.RunId, endStatus, runEvent.EndReason, cancellationToken).ConfigureAwait(false);
                        running[runEvent.RunId] = false;
                    }
                }

                return outcomes;
            },
            cancellationToken);
    }

    public Task<bool> FailRunAsync(string runId, string reason, Func<RunRecord, long, string> lastEvent, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentNullException.ThrowIfNull(lastEvent);
        return WriteAsync(
            async transaction =>
            {
                if (!await EndAsync(transaction, runId, RunStatuses.Failed, reason, cancellationToken).ConfigureAwait(false))
                {
                    return false;
                }

                var run = (await SingleOrNullAsync(Sql(transaction, $"{SelectRun} WHERE id = $id;", ("$id", runId)), ReadRun, cancellationToken).ConfigureAwait(false))!;
                long last;
                await using (var max = Sql(transaction, "SELECT coalesce(max(seq), 0) FROM run_events WHERE run_id = $id;", ("$id", runId)))
                {
                    last = Convert.ToInt64(await max.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
                }

                await ExecuteAsync(
                    Sql(
                        transaction,
                        "INSERT INTO run_events (run_id, seq, json) VALUES ($runId, $seq, $json);",
                        ("$runId", runId),
                        ("$seq", last + 1),
                        ("$json", lastEvent(run, last + 1))),
                    cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }

    public Task<bool> CompleteRunAsync(string runId, string status, string? reason, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        if (!RunStatuses.IsFinal(status))
        {
            throw new ArgumentException($"a run completes as '{RunStatuses.Succeeded}', '{RunStatuses.Failed}' or '{RunStatuses.Canceled}', not '{status}'.", nameof(status));
        }

        return WriteAsync(transaction => EndAsync(transaction, runId, status, reason, cancellationToken), cancellationToken);
    }

    /// <summary>Ends the run if it is running; false when it had ended already.</summary>
    private async Task<bool> EndAsync(SqliteTransaction transaction, string runId, string status, string? reason, CancellationToken cancellationToken)
    {
        var updated = await ExecuteAsync(
            Sql(
                transaction,
                "UPDATE runs SET status = $status, reason = $reason, finished_at = $now WHERE id = $id AND status = $running;",
                ("$id", runId),
                ("$status", status),
                ("$reason", reason),
                ("$running", RunStatuses.Running),
                ("$now", Now())),
            cancellationToken).ConfigureAwait(false);
        if (updated == 1)
        {
            await EnqueueRunEndedAsync(transaction, runId, cancellationToken).ConfigureAwait(false);
            return true;
        }

        return await ExistsAsync(Sql(transaction, "SELECT 1 FROM runs WHERE id = $id;", ("$id", runId)), cancellationToken).ConfigureAwait(false)
            ? false
            : throw MetadataNotFoundException.Run(runId);
    }

    public Task<RunRecord?> GetRunAsync(string id, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => SingleOrNullAsync(Sql(connection, $"{SelectRun} WHERE id = $id;", ("$id", id)), ReadRun, cancellationToken),
            cancellationToken);

    public Task<IReadOnlyList<RunRecord>> ListRunsAsync(string? location, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return ReadAsync(
            connection => ListAsync(
                location is null
                    ? Sql(connection, $"{SelectRun} ORDER BY started_at DESC, seq DESC LIMIT $limit;", ("$limit", limit))
                    : Sql(connection, $"{SelectRun} WHERE location = $location ORDER BY started_at DESC, seq DESC LIMIT $limit;", ("$location", location), ("$limit", limit)),
                ReadRun,
                cancellationToken),
            cancellationToken);
    }

    public Task<IReadOnlyList<RunEventRecord>> GetRunEventsAsync(string runId, long afterSeq, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return ReadAsync(
            connection => ListAsync(
                Sql(connection, "SELECT seq, json FROM run_events WHERE run_id = $runId AND seq > $afterSeq ORDER BY seq LIMIT $limit;", ("$runId", runId), ("$afterSeq", afterSeq), ("$limit", limit)),
                reader => new RunEventRecord(reader.GetInt64(0), reader.GetString(1)),
                cancellationToken),
            cancellationToken);
    }

    public Task<IReadOnlyList<RunningRun>> ListRunningRunsAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                Sql(
                    connection,
                    """
                    SELECT r.id, r.agent, coalesce((SELECT max(e.seq) FROM run_events e WHERE e.run_id = r.id), 0)
                    FROM runs r WHERE r.status = $running ORDER BY r.seq;
                    """,
                    ("$running", RunStatuses.Running)),
                reader => new RunningRun(reader.GetString(0), ReadNullableString(reader, 1), reader.GetInt64(2)),
                cancellationToken),
            cancellationToken);

    private static RunRecord ReadRun(SqliteDataReader reader) => new(
        Id: reader.GetString(0),
        Location: reader.GetString(1),
        Release: ReadDigest(reader, 2),
        Job: reader.GetString(3),
        ParametersJson: reader.GetString(4),
        Status: reader.GetString(5),
        StartedAt: ReadTime(reader, 6),
        FinishedAt: ReadNullableTime(reader, 7),
        Reason: ReadNullableString(reader, 8),
        Agent: ReadNullableString(reader, 9))
    {
        StartedBy = ReadNullableString(reader, 10),
        QueuedAt = ReadNullableTime(reader, 11),
        JobMaxConcurrent = reader.IsDBNull(12) ? null : (int)reader.GetInt64(12),
    };
}
