using Npgsql;

namespace Skiff.Server.Metadata;

internal sealed partial class PostgresMetadataStore
{
    private const string SelectRun = "SELECT id, location, release, job, parameters_json, status, started_at, finished_at, reason, agent, started_by, queued_at, job_max_concurrent FROM runs";

    /// <remarks>
    /// Concurrency: the checks read rows nothing deletes; an id taken at once by another server is caught
    /// by the unique constraint and reported as the same conflict.
    /// </remarks>
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
                if (await ExistsAsync(Sql(transaction, "SELECT 1 FROM runs WHERE id = @id;", ("@id", run.Id)), cancellationToken).ConfigureAwait(false))
                {
                    throw MetadataConflictException.DuplicateId("run", run.Id);
                }

                if (!await ExistsAsync(Sql(transaction, "SELECT 1 FROM locations WHERE name = @name;", ("@name", run.Location)), cancellationToken).ConfigureAwait(false))
                {
                    throw MetadataNotFoundException.Location(run.Location, $"run '{run.Id}'");
                }

                if (!await ExistsAsync(Sql(transaction, "SELECT 1 FROM releases WHERE id = @id;", ("@id", run.Release.ToString())), cancellationToken).ConfigureAwait(false))
                {
                    throw MetadataNotFoundException.Release(run.Release, $"run '{run.Id}'");
                }

                try
                {
                    await ExecuteAsync(
                        Sql(
                            transaction,
                            """
                            INSERT INTO runs (id, location, release, job, parameters_json, status, started_at, finished_at, reason, agent)
                            VALUES (@id, @location, @release, @job, @parameters, @status, @startedAt, @finishedAt, @reason, @agent);
                            """,
                            ("@id", run.Id),
                            ("@location", run.Location),
                            ("@release", run.Release.ToString()),
                            ("@job", run.Job),
                            ("@parameters", run.ParametersJson),
                            ("@status", run.Status),
                            ("@startedAt", Time(run.StartedAt)),
                            ("@finishedAt", Time(run.FinishedAt)),
                            ("@reason", run.Reason),
                            ("@agent", run.Agent)),
                        cancellationToken).ConfigureAwait(false);
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
                {
                    // Two servers recorded the same id at once; both passed the check above.
                    throw MetadataConflictException.DuplicateId("run", run.Id);
                }

                // A run recorded as ended at once is an end like any other.
                if (RunStatuses.IsFinal(run.Status))
                {
                    await EnqueueRunEndedAsync(transaction, run.Id, cancellationToken).ConfigureAwait(false);
                }
            },
            cancellationToken);
    }

    /// <remarks>
    /// Concurrency: one insert that does nothing when the (run, seq) pair is recorded, so events resent by
    /// a worker, or by two servers at once, land once. It takes the event from the run's row while the run is
    /// running, under a share lock: an insert racing <see cref="FailRunAsync"/> waits for it, then finds the run
    /// ended and stores nothing. It runs as a single statement on its own (no explicit transaction, one round trip
    /// less on the most frequent write); being idempotent, it is also safe to send again after a connection that
    /// broke in the middle, which the store does once.
    /// </remarks>
    public Task<bool> AppendRunEventAsync(string runId, long seq, string eventJson, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentNullException.ThrowIfNull(eventJson);
        return WithoutTransactionAsync(
            async connection =>
            {
                try
                {
                    var stored = await ExecuteAsync(
                        Sql(
                            connection,
                            """
                            INSERT INTO run_events (run_id, seq, json)
                            SELECT id, @seq, @json FROM runs WHERE id = @runId AND status = @running FOR SHARE
                            ON CONFLICT (run_id, seq) DO NOTHING;
                            """,
                            ("@runId", runId),
                            ("@seq", seq),
                            ("@json", eventJson),
                            ("@running", RunStatuses.Running)),
                        cancellationToken).ConfigureAwait(false);
                    return stored == 1
                        || (await ExistsAsync(Sql(connection, "SELECT 1 FROM runs WHERE id = @id;", ("@id", runId)), cancellationToken).ConfigureAwait(false)
                            ? false
                            : throw MetadataNotFoundException.Run(runId));
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
                {
                    // The run was deleted between the select and the insert.
                    throw MetadataNotFoundException.Run(runId);
                }
            },
            cancellationToken);
    }

    /// <remarks>
    /// Concurrency: the rows of the runs named are locked first (FOR NO KEY UPDATE, in id order), so no other
    /// server's batch, single append or <see cref="FailRunAsync"/> changes those runs until this commits, and two
    /// batches (an agent that moved to another server while the first still held its events) wait for each other
    /// instead of deadlocking. Which events to store is then decided here from those runs' states, and they go in
    /// with one insert from arrays: three round trips for any number of events, not one per event.
    /// </remarks>
    public Task<IReadOnlyList<RunEventOutcome>> AppendRunEventsAsync(IReadOnlyList<RunEventToStore> events, CancellationToken cancellationToken)
    {
        RunEventToStore.CheckAll(events);
        return WriteAsync<IReadOnlyList<RunEventOutcome>>(
            async transaction =>
            {
                var outcomes = new RunEventOutcome[events.Count];
                var ids = events.Select(e => e.RunId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();

                // Per run: true while running, false once ended, absent when no run has the id.
                var running = new Dictionary<string, bool>(StringComparer.Ordinal);
                foreach (var (id, status) in await ListAsync(
                             Sql(transaction, "SELECT id, status FROM runs WHERE id = ANY(@ids) ORDER BY id FOR NO KEY UPDATE;", ("@ids", ids)),
                             reader => (reader.GetString(0), reader.GetString(1)),
                             cancellationToken).ConfigureAwait(false))
                {
                    running[id] = status == RunStatuses.Running;
                }

                var candidates = new List<int>();
                var ends = new List<RunEventToStore>();
                var seen = new HashSet<(string, long)>();
                for (var i = 0; i < events.Count; i++)
                {
                    var runEvent = events[i];
                    if (!running.TryGetValue(runEvent.RunId, out var isRunning))
                    {
                        outcomes[i] = RunEventOutcome.UnknownRun;
                        continue;
                    }

                    outcomes[i] = RunEventOutcome.Ignored;
                    if (!isRunning)
                    {
                        continue;
                    }

                    if (seen.Add((runEvent.RunId, runEvent.Seq)))
                    {
                        candidates.Add(i);
                    }

                    if (runEvent.EndStatus is not null)
                    {
                        ends.Add(runEvent);
                        running[runEvent.RunId] = false;
                    }
                }

                if (candidates.Count > 0)
                {
                    var stored = (await ListAsync(
                        Sql(
                            transaction,
                            """
                            INSERT INTO run_events (run_id, seq, json)
                            SELECT * FROM unnest(@runIds::text[], @seqs::bigint[], @jsons::text[])
                            ON CONFLICT (run_id, seq) DO NOTHING
                            RETURNING run_id, seq;
                            """,
                            ("@runIds", candidates.Select(i => events[i].RunId).ToArray()),
                            ("@seqs", candidates.Select(i => events[i].Seq).ToArray()),
                            ("@jsons", candidates.Select(i => events[i].Json).ToArray())),
                        reader => (reader.GetString(0), reader.GetInt64(1)),
                        cancellationToken).ConfigureAwait(false)).ToHashSet();
                    foreach (var i in candidates.Where(i => stored.Contains((events[i].RunId, events[i].Seq))))
                    {
                        outcomes[i] = RunEventOutcome.Stored;
                    }
                }

                foreach (var end in ends)
                {
                    await EndAsync(transaction, end.RunId, end.EndStatus!, end.EndReason, cancellationToken).ConfigureAwait(false);
                }

                return outcomes;
            },
            cancellationToken);
    }

    /// <remarks>
    /// Concurrency: the update takes the run's row lock first, so event inserts (which share-lock it) either
    /// committed before it, and the max below sees them, or wait and then store nothing.
    /// </remarks>
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

                var run = (await SingleOrNullAsync(Sql(transaction, $"{SelectRun} WHERE id = @id;", ("@id", runId)), ReadRun, cancellationToken).ConfigureAwait(false))!;
                long last;
                await using (var max = Sql(transaction, "SELECT coalesce(max(seq), 0) FROM run_events WHERE run_id = @id;", ("@id", runId)))
                {
                    last = Convert.ToInt64(await max.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
                }

                await ExecuteAsync(
                    Sql(
                        transaction,
                        "INSERT INTO run_events (run_id, seq, json) VALUES (@runId, @seq, @json);",
                        ("@runId", runId),
                        ("@seq", last + 1),
                        ("@json", lastEvent(run, last + 1))),
                    cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }

    /// <remarks>
    /// Concurrency: a conditional update (<c>WHERE status = 'running'</c>): of two ends reported at once,
    /// the second waits on the row lock, then finds the run ended and changes nothing.
    /// </remarks>
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
    private async Task<bool> EndAsync(NpgsqlTransaction transaction, string runId, string status, string? reason, CancellationToken cancellationToken)
    {
        var updated = await ExecuteAsync(
            Sql(
                transaction,
                "UPDATE runs SET status = @status, reason = @reason, finished_at = @now WHERE id = @id AND status = @running;",
                ("@id", runId),
                ("@status", status),
                ("@reason", reason),
                ("@running", RunStatuses.Running),
                ("@now", Now())),
            cancellationToken).ConfigureAwait(false);
        if (updated == 1)
        {
            await EnqueueRunEndedAsync(transaction, runId, cancellationToken).ConfigureAwait(false);
            return true;
        }

        return await ExistsAsync(Sql(transaction, "SELECT 1 FROM runs WHERE id = @id;", ("@id", runId)), cancellationToken).ConfigureAwait(false)
            ? false
            : throw MetadataNotFoundException.Run(runId);
    }

    public Task<RunRecord?> GetRunAsync(string id, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => SingleOrNullAsync(Sql(connection, $"{SelectRun} WHERE id = @id;", ("@id", id)), ReadRun, cancellationToken),
            cancellationToken);

    public Task<IReadOnlyList<RunRecord>> ListRunsAsync(string? location, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return ReadAsync(
            connection => ListAsync(
                location is null
                    ? Sql(connection, $"{SelectRun} ORDER BY started_at DESC, seq DESC LIMIT @limit;", ("@limit", limit))
                    : Sql(connection, $"{SelectRun} WHERE location = @location ORDER BY started_at DESC, seq DESC LIMIT @limit;", ("@location", location), ("@limit", limit)),
                ReadRun,
                cancellationToken),
            cancellationToken);
    }

    public Task<IReadOnlyList<RunEventRecord>> GetRunEventsAsync(string runId, long afterSeq, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return ReadAsync(
            connection => ListAsync(
                Sql(connection, "SELECT seq, json FROM run_events WHERE run_id = @runId AND seq > @afterSeq ORDER BY seq LIMIT @limit;", ("@runId", runId), ("@afterSeq", afterSeq), ("@limit", limit)),
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
                    FROM runs r WHERE r.status = @running ORDER BY r.seq;
                    """,
                    ("@running", RunStatuses.Running)),
                reader => new RunningRun(reader.GetString(0), ReadNullableString(reader, 1), reader.GetInt64(2)),
                cancellationToken),
            cancellationToken);

    private static RunRecord ReadRun(NpgsqlDataReader reader) => new(
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
        JobMaxConcurrent = reader.IsDBNull(12) ? null : reader.GetInt32(12),
    };
}
