using System.CommandLine;
using System.Globalization;
using Skiff.Client.Api;

namespace Skiff.Cli.Commands;

/// <summary><c>skiff schedules</c>, <c>skiff schedules pause|resume LOCATION JOB</c>: the cron schedules of the live releases (docs/schedules.md).</summary>
internal static class ScheduleCommands
{
    public static Command Create()
    {
        var location = new Option<string?>("--location") { Description = "Only this location's schedules." };
        var json = new Option<bool>("--json") { Description = "Print JSON, as GET /api/v1/schedules answers." };
        var client = new ClientOptions();
        var command = new Command("schedules", "List the cron schedules of the live releases: state, last tick and its run, and the next fire time in UTC and in the schedule's time zone. `skiff schedules pause|resume LOCATION JOB` stops and restarts a job's schedules.")
        {
            location,
            json,
            Change("pause", paused: true, "Pause a job's schedules on a location: no run starts for their ticks until `skiff schedules resume`."),
            Change("resume", paused: false, "Resume a job's paused schedules from their next tick on; ticks that came due while paused never run."),
        };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var schedules = await api.ListSchedulesAsync(parse.GetValue(location), cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(QueryCommands.Node(schedules, ApiJson.Default.IReadOnlyListScheduleSummary).ToJsonString(QueryCommands.Indented));
                return 0;
            }

            if (schedules.Count == 0)
            {
                Console.WriteLine("no schedules: no live release declares one (jobs.Job(\"name\").Schedule(\"0 2 * * *\") in job code)");
                return 0;
            }

            Console.Write(QueryCommands.Table(
                ["LOCATION", "JOB", "CRON", "TIME ZONE", "STATE", "LAST TICK", "NEXT (UTC)", "NEXT (ZONE)"],
                [.. schedules.Select(s => new[]
                {
                    s.Location,
                    s.Job,
                    s.Cron,
                    s.TimeZone,
                    s.Problem is { } problem ? $"invalid: {problem}" : s.State,
                    s.LastTick is { } tick ? $"{Utc(tick.At)} {tick.Run ?? "(no run)"}{(tick.Note is { } note ? $" {note}" : "")}" : "-",
                    s.NextAt is { } next ? Utc(next) : "-",
                    s.NextAtLocal is { } local ? local.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture) : "-",
                })]));
            return 0;
        }));
        return command;
    }

    private static Command Change(string name, bool paused, string description)
    {
        var location = new Argument<string>("location") { Description = "The location whose live release declares the schedule." };
        var job = new Argument<string>("job") { Description = "The job; all of its schedules change together." };
        var client = new ClientOptions();
        var command = new Command(name, description) { location, job };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var changed = await api.PauseScheduleAsync(parse.GetValue(location)!, parse.GetValue(job)!, paused, cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"schedules of job '{changed.Job}' on '{changed.Location}': {changed.State}");
            return 0;
        }));
        return command;
    }

    private static string Utc(DateTimeOffset at) => at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
