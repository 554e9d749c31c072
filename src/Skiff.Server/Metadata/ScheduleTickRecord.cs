namespace Skiff.Server.Metadata;

/// <summary>
/// One tick of a cron schedule, recorded before its run starts: the row whose unique key makes a tick start one run
/// however many servers evaluate the schedule (docs/schedules.md, "Exactly once").
/// </summary>
/// <param name="Location">The location whose live release declares the schedule.</param>
/// <param name="Job">The job the schedule runs.</param>
/// <param name="Schedule">Which of the job's schedules: its cron expression and time zone (<c>"0 2 * * * Europe/Berlin"</c>).</param>
/// <param name="TickAt">When the tick came due, UTC.</param>
/// <param name="RecordedAt">When a server recorded it.</param>
/// <param name="Server">The server that recorded it, and so started (or skipped) its run.</param>
/// <param name="Run">The run it started; null while it starts, and for a skipped or failed tick.</param>
/// <param name="Note">Why it started no run (skipped as missed, or the run could not start); null otherwise.</param>
internal sealed record ScheduleTickRecord(
    string Location,
    string Job,
    string Schedule,
    DateTimeOffset TickAt,
    DateTimeOffset RecordedAt,
    string Server,
    string? Run = null,
    string? Note = null)
{
    /// <summary>
    /// How long a schedule's ticks are kept before its newest: evaluation reads only the newest, and the unique key is
    /// only contested for ticks that are due now, so older rows are history (<c>skiff schedules</c> shows the last).
    /// </summary>
    public static readonly TimeSpan KeptFor = TimeSpan.FromDays(30);

    /// <summary>What a run a schedule started records as <see cref="RunRecord.StartedBy"/>.</summary>
    public static string StartedBy(string job) => $"schedule:{job}";
}

/// <summary>Whether a job's schedules on a location are paused (<c>skiff schedules pause</c>).</summary>
/// <param name="Location">The location.</param>
/// <param name="Job">The job; every schedule of it is paused or resumed together.</param>
/// <param name="PausedAt">Since when they are paused; null while they run.</param>
/// <param name="ResumedAt">When they were last resumed: ticks before it, missed while paused, never run.</param>
internal sealed record ScheduleStateRecord(string Location, string Job, DateTimeOffset? PausedAt, DateTimeOffset? ResumedAt)
{
    public bool Paused => PausedAt is not null;
}
