using System.Text.Json.Nodes;

namespace Skiff.Client.Api;

// The messages of /api/v1/schedules (docs/schedules.md).

/// <summary>A cron schedule of a job in a location's live release, as <c>GET /api/v1/schedules</c> lists it.</summary>
/// <param name="Location">Where the job is live.</param>
/// <param name="Job">The job it starts.</param>
/// <param name="Cron">Its cron expression, as declared.</param>
/// <param name="TimeZone">The IANA time zone (or UTC) its fields are read in.</param>
/// <param name="Missed">What it does about ticks missed while no server ran: <c>skip</c> or <c>run_once</c>.</param>
/// <param name="Params">The parameters of the runs it starts.</param>
/// <param name="State"><c>active</c>, <c>paused</c>, or <c>invalid</c> (see <paramref name="Problem"/>).</param>
/// <param name="Problem">Why the server cannot evaluate it (a time zone its machine lacks); null otherwise.</param>
/// <param name="LastTick">Its newest recorded tick; null before the first.</param>
/// <param name="NextAt">When it fires next, UTC; null while paused or invalid, or when it never fires again.</param>
/// <param name="NextAtLocal">The same moment in the schedule's time zone, with that zone's offset.</param>
internal sealed record ScheduleSummary(
    string Location,
    string Job,
    string Cron,
    string TimeZone,
    string Missed,
    JsonObject Params,
    string State,
    string? Problem,
    ScheduleTick? LastTick,
    DateTimeOffset? NextAt,
    DateTimeOffset? NextAtLocal);

/// <summary>A recorded tick of a schedule.</summary>
/// <param name="At">When it came due, UTC.</param>
/// <param name="Run">The run it started; null when it started none.</param>
/// <param name="Note">Why it started none (skipped as missed, or the run could not start), or that it ran late.</param>
internal sealed record ScheduleTick(DateTimeOffset At, string? Run, string? Note);

/// <summary>The answer of <c>POST /api/v1/schedules/{name}/{job}/pause</c> and <c>…/resume</c>.</summary>
/// <param name="Location">The location.</param>
/// <param name="Job">The job whose schedules changed.</param>
/// <param name="State"><c>paused</c> or <c>active</c>.</param>
internal sealed record ScheduleChange(string Location, string Job, string State);
