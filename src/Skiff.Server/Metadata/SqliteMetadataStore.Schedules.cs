namespace Skiff.Server.Metadata;

internal sealed partial class SqliteMetadataStore
{
    private const string SelectTick = "SELECT location, job, schedule, tick_at, recorded_at, server, run_id, note FROM schedule_ticks";

    public async Task<bool> RecordScheduleTickAsync(ScheduleTickRecord tick, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tick);
        return await WriteAsync(
            async transaction =>
            {
                var recorded = await ExecuteAsync(
                    Sql(
                        transaction,
                        """
                        INSERT INTO schedule_ticks (location, job, schedule, tick_at, recorded_at, server, run_id, note)
                        VALUES ($location, $job, $schedule, $tickAt, $recordedAt, $server, $run, $note)
                        ON CONFLICT (location, job, schedule, tick_at) DO NOTHING;
                        """,
                        ("$location", tick.Location),
                        ("$job", tick.Job),
                        ("$schedule", tick.Schedule),
                        ("$tickAt", Time(tick.TickAt)),
                        ("$recordedAt", Time(tick.RecordedAt)),
                        ("$server", tick.Server),
                        ("$run", tick.Run),
                        ("$note", tick.Note)),
                    cancellationToken).ConfigureAwait(false);
                if (recorded == 1)
                {
                    await ExecuteAsync(
                        Sql(
                            transaction,
                            "DELETE FROM schedule_ticks WHERE location = $location AND job = $job AND schedule = $schedule AND tick_at < $forgetBefore;",
                            ("$location", tick.Location),
                            ("$job", tick.Job),
                            ("$schedule", tick.Schedule),
                            ("$forgetBefore", Time(tick.TickAt - ScheduleTickRecord.KeptFor))),
                        cancellationToken).ConfigureAwait(false);
                }

                return recorded == 1;
            },
            cancellationToken).ConfigureAwait(false);
    }

    public Task<bool> CompleteScheduleTickAsync(ScheduleTickRecord tick, string? run, string? note, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tick);
        return WriteAsync(
            async transaction =>
            {
                var changed = await ExecuteAsync(
                    Sql(
                        transaction,
                        "UPDATE schedule_ticks SET run_id = $run, note = $note WHERE location = $location AND job = $job AND schedule = $schedule AND tick_at = $tickAt;",
                        ("$run", run),
                        ("$note", note),
                        ("$location", tick.Location),
                        ("$job", tick.Job),
                        ("$schedule", tick.Schedule),
                        ("$tickAt", Time(tick.TickAt))),
                    cancellationToken).ConfigureAwait(false);
                if (changed == 1 && run is not null)
                {
                    await ExecuteAsync(
                        Sql(transaction, "UPDATE runs SET started_by = $by WHERE id = $run;", ("$by", ScheduleTickRecord.StartedBy(tick.Job)), ("$run", run)),
                        cancellationToken).ConfigureAwait(false);
                }

                return changed == 1;
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<ScheduleTickRecord>> ListLatestScheduleTicksAsync(string? location, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                Sql(
                    connection,
                    $"""
                    {SelectTick} t
                    WHERE {(location is null ? "" : "location = $location AND ")}tick_at = (SELECT max(tick_at) FROM schedule_ticks u WHERE u.location = t.location AND u.job = t.job AND u.schedule = t.schedule)
                    ORDER BY location, job, schedule;
                    """,
                    ("$location", location)),
                reader => new ScheduleTickRecord(
                    reader.GetString(0),
                    reader.GetString(1),
                    reader.GetString(2),
                    ReadTime(reader, 3),
                    ReadTime(reader, 4),
                    reader.GetString(5),
                    ReadNullableString(reader, 6),
                    ReadNullableString(reader, 7)),
                cancellationToken),
            cancellationToken);

    public Task SetSchedulePausedAsync(string location, string job, bool paused, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(location);
        ArgumentException.ThrowIfNullOrEmpty(job);
        return WriteAsync(
            transaction => ExecuteAsync(
                Sql(
                    transaction,
                    paused
                        ? """
                          INSERT INTO schedule_states (location, job, paused_at) VALUES ($location, $job, $now)
                          ON CONFLICT (location, job) DO UPDATE SET paused_at = coalesce(schedule_states.paused_at, excluded.paused_at);
                          """
                        : "UPDATE schedule_states SET paused_at = NULL, resumed_at = $now WHERE location = $location AND job = $job AND paused_at IS NOT NULL;",
                    ("$location", location),
                    ("$job", job),
                    ("$now", Now())),
                cancellationToken),
            cancellationToken);
    }

    public Task<IReadOnlyList<ScheduleStateRecord>> ListScheduleStatesAsync(string? location, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                Sql(
                    connection,
                    $"SELECT location, job, paused_at, resumed_at FROM schedule_states{(location is null ? "" : " WHERE location = $location")} ORDER BY location, job;",
                    ("$location", location)),
                reader => new ScheduleStateRecord(reader.GetString(0), reader.GetString(1), ReadNullableTime(reader, 2), ReadNullableTime(reader, 3)),
                cancellationToken),
            cancellationToken);
}
