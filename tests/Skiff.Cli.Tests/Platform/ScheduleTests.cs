using System.Text.Json.Nodes;
using Skiff.Server.Metadata;

namespace Skiff.Cli.Tests.Platform;

/// <summary>A job deployed with a cron schedule: the server starts its runs by itself, and <c>skiff schedules</c> shows, pauses and resumes it.</summary>
public sealed class ScheduleTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private EmbeddedPlatform Platform => fixture.Platform;

    [Fact]
    public async Task A_deployed_schedule_gets_its_runs_started_by_the_server_and_is_listed_paused_and_resumed_from_the_cli()
    {
        var project = fixture.Variant("scheduled", program => program.Replace(
            """.Parameter("name", "world", "who to greet")""",
            """.Parameter("name", "world", "who to greet").Schedule("*/2 * * * * *", timeZone: "Europe/Berlin", parameters: new { name = "schedule" })""",
            StringComparison.Ordinal));
        var deploy = await Platform.SkiffAsync("deploy", project, "--location", "scheduled");
        deploy.ExitCode.ShouldBe(0, deploy.ToString());

        // Every two seconds on the server's real clock: the first run is on its way within a few.
        var run = await WaitForAsync(async () => (await Platform.Server.Store.ListRunsAsync("scheduled", 10, CancellationToken.None))
            .LastOrDefault(r => r.StartedBy == "schedule:hello" && r.Status != RunStatuses.Running));
        var logs = await Platform.SkiffAsync("logs", run.Id);
        var list = await Platform.SkiffAsync("schedules", "--location", "scheduled");
        var pause = await Platform.SkiffAsync("schedules", "pause", "scheduled", "hello");
        var paused = await Platform.SkiffAsync("schedules", "--json");
        var unknown = await Platform.SkiffAsync("schedules", "pause", "scheduled", "etl");
        var resume = await Platform.SkiffAsync("schedules", "resume", "scheduled", "hello");
        var resumed = await Platform.SkiffAsync("schedules", "--location", "scheduled", "--json");
        // Quiet again before the platform stops.
        await Platform.SkiffAsync("schedules", "pause", "scheduled", "hello");

        run.Status.ShouldBe(RunStatuses.Succeeded);
        run.ParametersJson.ShouldBe("""{"name":"schedule"}""");
        logs.Stdout.ShouldContain("Hello, schedule!", Case.Sensitive, logs.ToString());
        list.ExitCode.ShouldBe(0, list.ToString());
        list.Stdout.ShouldContain("*/2 * * * * *");
        list.Stdout.ShouldContain("Europe/Berlin");
        list.Stdout.ShouldContain("active");
        // The next fire time in UTC and in the schedule's zone (Berlin is UTC+1 in winter, +2 in summer).
        list.Stdout.ShouldMatch(@"\d\d:\d\d:\d\dZ .* \+0[12]:00");
        pause.ExitCode.ShouldBe(0, pause.ToString());
        pause.Stdout.ShouldContain("schedules of job 'hello' on 'scheduled': paused");
        var pausedSchedule = JsonNode.Parse(paused.Stdout)!.AsArray().Single(s => (string?)s!["location"] == "scheduled")!;
        ((string?)pausedSchedule["state"]).ShouldBe("paused");
        pausedSchedule["next_at"].ShouldBeNull();
        ((string?)pausedSchedule["last_tick"]!["run"]).ShouldStartWith("r-");
        unknown.ExitCode.ShouldNotBe(0, unknown.ToString());
        unknown.Stderr.ShouldContain("job 'etl' of location 'scheduled' has no schedule in its live release; these jobs have: hello");
        resume.ExitCode.ShouldBe(0, resume.ToString());
        var resumedSchedule = JsonNode.Parse(resumed.Stdout)!.AsArray().ShouldHaveSingleItem()!;
        ((string?)resumedSchedule["state"]).ShouldBe("active");
        resumedSchedule["next_at"].ShouldNotBeNull();
    }

    private static async Task<T> WaitForAsync<T>(Func<Task<T?>> find)
        where T : class
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            if (await find() is { } found)
            {
                return found;
            }

            (DateTime.UtcNow < deadline).ShouldBeTrue("the server started no scheduled run that ended in time");
            await Task.Delay(50);
        }
    }
}
