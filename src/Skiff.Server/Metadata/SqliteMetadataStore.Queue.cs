using Microsoft.Data.Sqlite;

namespace Skiff.Server.Metadata;

/// <remarks>
/// The run queue. SQLite needs no lock of its own: every write is one IMMEDIATE transaction, which holds the whole
/// database, so a decision to start or queue a run sees every run that any process started before it.
/// </remarks>
internal sealed partial class SqliteMetadataStore
{
    public Task SetLocationMaxConcurrentAsync(string location, int? maxConcurrent, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(location);
        if (maxConcurrent is { } limit)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1, nameof(maxConcurrent));
        }

        return SetLocationSettingAsync(location, "max_concurrent", maxConcurrent, cancellationToken);
    }

    public Task SetLocationRefusesExperimentalAsync(string location, bool refuses, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(location);
        return SetLocationSettingAsync(location, "refuses_experimental", refuses, cancellationToken);
    }

    public Task SetLocationRunsAsync(string location, string runs, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(location);
        RunHostings.Check(runs);
        return SetLocationSettingAsync(location, "runs", runs, cancellationToken);
    }

    /// <summary>Sets one of a location's settings (a column of its row; never from user input).</summary>
    /// <exception cref="MetadataNotFoundException">There is no such location.</exception>
    private Task SetLocationSettingAsync(string location, string column, object? value, CancellationToken cancellationToken) =>
        WriteAsync(
            async transaction =>
            {
                var updated = await ExecuteAsync(
                    Sql(transaction, $"UPDATE locations SET {column} = $value WHERE name = $name;", ("$name", location), ("$value", value)),
                    cancellationToken).ConfigureAwait(false);
                if (updated == 0)
                {
                    throw MetadataNotFoundException.LocationSetting(location);
                }
            },
            cancellationToken);

    public Task<IReadOnlyList<RunRecord>> QueueRunAsync(RunRecord run, string agent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentException.ThrowIfNullOrEmpty(run.Id, nameof(run));
        ArgumentException.ThrowIfNullOrEmpty(run.Job, nameof(run));
        ArgumentNullException.ThrowIfNull(run.ParametersJson, nameof(run));
        ArgumentException.ThrowIfNullOrEmpty(agent);
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
                        INSERT INTO runs (id, location, release, job, parameters_json, status, started_at, queued_at, job_max_concurrent, started_by)
                        VALUES ($id, $location, $release, $job, $parameters, $queued, $at, $at, $jobLimit, $startedBy);
                        """,
                        ("$id", run.Id),
                        ("$location", run.Location),
                        ("$release", run.Release.ToString()),
                        ("$job", run.Job),
                        ("$parameters", run.ParametersJson),
                        ("$queued", RunStatuses.Queued),
                        ("$at", Time(run.StartedAt)),
                        ("$jobLimit", run.JobMaxConcurrent),
                        ("$startedBy", run.StartedBy)),
                    cancellationToken).ConfigureAwait(false);
                return await StartQueuedAsync(transaction, run.Location, agent, cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<RunRecord>> StartQueuedRunsAsync(string location, string agent, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(location);
        ArgumentException.ThrowIfNullOrEmpty(agent);
        return WriteAsync(transaction => StartQueuedAsync(transaction, location, agent, cancellationToken), cancellationToken);
    }

    /// <summary>The one place queued runs start (the contract's <see cref="IMetadataStore.StartQueuedRunsAsync"/>).</summary>
    private async Task<IReadOnlyList<RunRecord>> StartQueuedAsync(SqliteTransaction transaction, string location, string agent, CancellationToken cancellationToken)
    {
        var settings = await ListAsync(
            Sql(transaction, "SELECT live_release, max_concurrent FROM locations WHERE name = $name;", ("$name", location)),
            reader => (Release: ReadNullableString(reader, 0), Limit: reader.IsDBNull(1) ? (int?)null : (int)reader.GetInt64(1)),
            cancellationToken).ConfigureAwait(false);
        if (settings is not [{ Release: { } release } only])
        {
            return [];
        }

        var runningByJob = (await ListAsync(
            Sql(transaction, "SELECT job, count(*) FROM runs WHERE location = $location AND status = $running GROUP BY job;", ("$location", location), ("$running", RunStatuses.Running)),
            reader => (Job: reader.GetString(0), Count: (int)reader.GetInt64(1)),
            cancellationToken).ConfigureAwait(false)).ToDictionary(r => r.Job, r => r.Count, StringComparer.Ordinal);
        var running = runningByJob.Values.Sum();
        if (running >= only.Limit)
        {
            return [];
        }

        var queued = await ListAsync(
            Sql(transaction, $"{SelectRun} WHERE location = $location AND status = $queued ORDER BY seq;", ("$location", location), ("$queued", RunStatuses.Queued)),
            ReadRun,
            cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        var started = new List<RunRecord>();
        foreach (var run in queued)
        {
            if (running >= only.Limit)
            {
                break;
            }

            if (runningByJob.GetValueOrDefault(run.Job) >= run.JobMaxConcurrent)
            {
                continue;
            }

            // A run canceled since the list was read (a cancel takes no location lock) is left as it is.
            var updated = await ExecuteAsync(
                Sql(
                    transaction,
                    "UPDATE runs SET status = $running, started_at = $now, agent = $agent, release = $release WHERE id = $id AND status = $queued;",
                    ("$id", run.Id),
                    ("$running", RunStatuses.Running),
                    ("$now", Time(now)),
                    ("$agent", agent),
                    ("$release", release),
                    ("$queued", RunStatuses.Queued)),
                cancellationToken).ConfigureAwait(false);
            if (updated == 0)
            {
                continue;
            }

            running++;
            runningByJob[run.Job] = runningByJob.GetValueOrDefault(run.Job) + 1;
            started.Add((await SingleOrNullAsync(Sql(transaction, $"{SelectRun} WHERE id = $id;", ("$id", run.Id)), ReadRun, cancellationToken).ConfigureAwait(false))!);
        }

        return started;
    }

    public Task<bool> CancelQueuedRunAsync(string runId, string reason, Func<RunRecord, long, string> lastEvent, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentNullException.ThrowIfNull(lastEvent);
        return WriteAsync(
            async transaction =>
            {
                var updated = await ExecuteAsync(
                    Sql(
                        transaction,
                        "UPDATE runs SET status = $canceled, reason = $reason, started_at = $now, finished_at = $now WHERE id = $id AND status = $queued;",
                        ("$id", runId),
                        ("$canceled", RunStatuses.Canceled),
                        ("$reason", reason),
                        ("$queued", RunStatuses.Queued),
                        ("$now", Now())),
                    cancellationToken).ConfigureAwait(false);
                if (updated == 0)
                {
                    return await ExistsAsync(Sql(transaction, "SELECT 1 FROM runs WHERE id = $id;", ("$id", runId)), cancellationToken).ConfigureAwait(false)
                        ? false
                        : throw MetadataNotFoundException.Run(runId);
                }

                var run = (await SingleOrNullAsync(Sql(transaction, $"{SelectRun} WHERE id = $id;", ("$id", runId)), ReadRun, cancellationToken).ConfigureAwait(false))!;
                await ExecuteAsync(
                    Sql(transaction, "INSERT INTO run_events (run_id, seq, json) VALUES ($runId, 1, $json);", ("$runId", runId), ("$json", lastEvent(run, 1))),
                    cancellationToken).ConfigureAwait(false);
                await EnqueueRunEndedAsync(transaction, runId, cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<string>> ListLocationsWithQueuedRunsAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                Sql(connection, "SELECT DISTINCT location FROM runs WHERE status = $queued ORDER BY location;", ("$queued", RunStatuses.Queued)),
                reader => reader.GetString(0),
                cancellationToken),
            cancellationToken);

    public Task<IReadOnlyList<ActiveRuns>> CountActiveRunsAsync(string location, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                // The statuses written out, not bound, so each half reads its partial index (runs_running_by_location, runs_queued).
                Sql(
                    connection,
                    $"""
                    SELECT agent, count(*) FROM runs WHERE location = $location AND status = '{RunStatuses.Running}' GROUP BY agent
                    UNION ALL
                    SELECT NULL, count(*) FROM runs WHERE location = $location AND status = '{RunStatuses.Queued}' HAVING count(*) > 0;
                    """,
                    ("$location", location)),
                reader => new ActiveRuns(reader.IsDBNull(0) ? null : reader.GetString(0), (int)reader.GetInt64(1)),
                cancellationToken),
            cancellationToken);
}
