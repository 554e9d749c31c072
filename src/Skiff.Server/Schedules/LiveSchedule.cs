using System.Text.Json.Nodes;
using Cronos;
using Skiff.Sdk.Definitions;
using Skiff.Server.Metadata;

namespace Skiff.Server.Schedules;

/// <summary>
/// A cron schedule of a job in a location's live release, as the release reported it (docs/schedules.md). A schedule
/// is active only while its release is live: a deploy that drops it stops it, one that adds it starts it.
/// </summary>
/// <param name="Location">Where the job is live.</param>
/// <param name="Job">The job it starts.</param>
/// <param name="Cron">Its cron expression as declared.</param>
/// <param name="TimeZoneName">The IANA name (or UTC) its fields are read in.</param>
/// <param name="Parameters">The parameters of the runs it starts.</param>
/// <param name="RunOnce">Whether missed ticks get one run (<c>MissedTicks.RunOnce</c>) or none (<c>Skip</c>).</param>
/// <param name="Problem">Why this server cannot evaluate it (a time zone its database lacks); null when it can.</param>
internal sealed record LiveSchedule(string Location, string Job, string Cron, string TimeZoneName, JsonObject Parameters, bool RunOnce, string? Problem)
{
    private CronExpression? _expression;
    private TimeZoneInfo? _zone;

    /// <summary>Which of the job's schedules this is, as its ticks are keyed: the expression and the zone.</summary>
    public string Id => $"{Cron} {TimeZoneName}";

    public string Missed => RunOnce ? "run_once" : "skip";

    public TimeZoneInfo Zone => _zone ?? TimeZoneInfo.Utc;

    /// <summary>The schedules the live release of <paramref name="location"/> declares, in the order it reported them.</summary>
    public static IReadOnlyList<LiveSchedule> Of(LocationRecord location)
    {
        if (location.LiveRelease is null || location.DefinitionsJson is null || JsonNode.Parse(location.DefinitionsJson) is not JsonArray jobs)
        {
            return [];
        }

        var schedules = new List<LiveSchedule>();
        foreach (var job in jobs.OfType<JsonObject>())
        {
            if ((string?)job["name"] is not { } name || job["schedules"] is not JsonArray declared)
            {
                continue;
            }

            foreach (var schedule in declared.OfType<JsonObject>())
            {
                schedules.Add(Read(location.Name, name, schedule));
            }
        }

        return schedules;
    }

    /// <summary>
    /// The ticks due after <paramref name="after"/> up to and including <paramref name="now"/>: the latest, and whether
    /// there were more. Null when none is due (or the schedule cannot be evaluated here).
    /// </summary>
    public (DateTimeOffset Latest, bool More)? DueTicks(DateTimeOffset after, DateTimeOffset now)
    {
        if (_expression is null || after >= now)
        {
            return null;
        }

        var nowUtc = now.UtcDateTime;
        if (_expression.GetNextOccurrence(after.UtcDateTime, Zone) is not { } first || first > nowUtc)
        {
            return null;
        }

        // Only the latest tick matters (one run stands for all missed ones). A schedule every second missed for a week
        // would be 600,000 steps from the first; the last two days hold the latest of any schedule that is that dense.
        var latest = first;
        var more = false;
        if (nowUtc - first > TimeSpan.FromDays(2) && _expression.GetNextOccurrence(nowUtc - TimeSpan.FromDays(2), Zone) is { } recent && recent <= nowUtc)
        {
            more = recent != first;
            latest = recent;
        }

        while (_expression.GetNextOccurrence(latest, Zone) is { } next && next <= nowUtc)
        {
            more = true;
            latest = next;
        }

        return (new DateTimeOffset(latest, TimeSpan.Zero), more);
    }

    /// <summary>The first tick after <paramref name="now"/>, UTC; null when the expression never fires again.</summary>
    public DateTimeOffset? NextTick(DateTimeOffset now) =>
        _expression?.GetNextOccurrence(now.UtcDateTime, Zone) is { } next ? new DateTimeOffset(next, TimeSpan.Zero) : null;

    private static LiveSchedule Read(string location, string job, JsonObject schedule)
    {
        var cron = (string?)schedule["cron"] ?? "";
        var zoneName = (string?)schedule["time_zone"] ?? ScheduleDefinition.DefaultTimeZone;
        var parameters = schedule["params"] is JsonObject given ? (JsonObject)given.DeepClone() : [];
        var runOnce = (string?)schedule["missed"] == "run_once";
        try
        {
            // Checked by the SDK where it was declared; checked again here, where a server's time zone database (older,
            // or missing a zone) may disagree with the machine that built the release.
            var expression = ScheduleDefinition.ParseCron(cron);
            var zone = ScheduleDefinition.FindTimeZone(zoneName);
            return new LiveSchedule(location, job, cron, zoneName, parameters, runOnce, Problem: null) { _expression = expression, _zone = zone };
        }
        catch (ArgumentException exception)
        {
            return new LiveSchedule(location, job, cron, zoneName, parameters, runOnce, exception.Message);
        }
    }
}
