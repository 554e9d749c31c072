using System.Text.Json.Nodes;
using Cronos;

namespace Skiff.Sdk.Definitions;

/// <summary>
/// A cron schedule of a job: when the Skiff server starts a run of it, with which parameters, and what it does about
/// ticks missed while no server ran. Checked where it is declared, so a typo fails the program, not the night's run.
/// </summary>
internal sealed record ScheduleDefinition(string Cron, string TimeZone, JsonObject Parameters, MissedTicks Missed)
{
    /// <summary>The time zone a schedule without one is evaluated in.</summary>
    public const string DefaultTimeZone = "UTC";

    /// <summary>
    /// Parses a cron expression as the server evaluates it: five fields (minute hour day month weekday), or six with
    /// seconds first, or a macro such as <c>@daily</c>.
    /// </summary>
    /// <exception cref="ArgumentException">It is not one; the message says what is wrong.</exception>
    public static CronExpression ParseCron(string cron)
    {
        ArgumentNullException.ThrowIfNull(cron);
        var fields = cron.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        try
        {
            return CronExpression.Parse(cron, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        }
        catch (CronFormatException exception)
        {
            throw new ArgumentException(
                $"'{cron}' is not a cron expression Skiff can evaluate ({exception.Message.TrimEnd('.')}); use five fields (minute hour day-of-month month day-of-week, e.g. '0 2 * * *'), six with seconds first, or a macro such as '@daily'.",
                nameof(cron),
                exception);
        }
    }

    /// <summary>Finds an IANA time zone (<c>Europe/Berlin</c>) or <c>UTC</c> in the machine's time zone database.</summary>
    /// <exception cref="ArgumentException">There is no such zone here.</exception>
    public static TimeZoneInfo FindTimeZone(string timeZone)
    {
        ArgumentNullException.ThrowIfNull(timeZone);
        try
        {
            return timeZone is DefaultTimeZone ? TimeZoneInfo.Utc : TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        }
        catch (Exception exception) when (exception is TimeZoneNotFoundException or InvalidTimeZoneException or ArgumentException)
        {
            throw new ArgumentException(
                $"'{timeZone}' is not a time zone this machine knows; give an IANA name such as 'Europe/Berlin', 'America/New_York' or 'UTC'.",
                nameof(timeZone),
                exception);
        }
    }

    /// <summary>
    /// Which of a schedule's ticks is which: its cron expression and time zone. Two schedules of one job may not share
    /// them, so a tick is recorded (and run) once whatever order the schedules are declared in.
    /// </summary>
    public string Id => $"{Cron} {TimeZone}";
}
