using Skiff.Server.Schedules;

namespace Skiff.Server.Tests.Schedules;

/// <summary>Which ticks of a schedule are due and when it fires next, across daylight-saving changes (Cronos's rules).</summary>
public sealed class LiveScheduleTests
{
    private static LiveSchedule Schedule(string cron, string timeZone = "UTC") =>
        LiveSchedule.Of(Scheduled.Location(Scheduled.Definitions(cron, timeZone), Scheduled.At("2026-01-01T00:00:00Z"))).ShouldHaveSingleItem();

    [Fact]
    public void A_schedule_is_read_from_the_live_definitions_with_its_parameters_and_policy()
    {
        var schedule = LiveSchedule.Of(Scheduled.Location(Scheduled.Definitions("0 2 * * *", "Europe/Berlin", "run_once"), Scheduled.At("2026-01-01T00:00:00Z"))).ShouldHaveSingleItem();

        schedule.Job.ShouldBe("nightly");
        schedule.Id.ShouldBe("0 2 * * * Europe/Berlin");
        schedule.RunOnce.ShouldBeTrue();
        schedule.Parameters.ToJsonString().ShouldBe("""{"day":"yesterday"}""");
        schedule.Problem.ShouldBeNull();
        // No live release, no schedules: they are active only while their release is live.
        LiveSchedule.Of(Scheduled.Location(Scheduled.Definitions("0 2 * * *"), Scheduled.At("2026-01-01T00:00:00Z")) with { LiveRelease = null }).ShouldBeEmpty();
    }

    [Fact]
    public void A_time_zone_this_server_does_not_know_makes_the_schedule_invalid_with_the_reason()
    {
        var schedule = Schedule("0 2 * * *", "Mars/Olympus_Mons");

        schedule.Problem.ShouldNotBeNull().ShouldContain("'Mars/Olympus_Mons' is not a time zone");
        schedule.DueTicks(Scheduled.At("2026-01-01T00:00:00Z"), Scheduled.At("2026-01-03T00:00:00Z")).ShouldBeNull();
    }

    [Fact]
    public void A_tick_in_the_hour_skipped_by_the_spring_change_fires_once_at_the_change()
    {
        // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist that day.
        var schedule = Schedule("30 2 * * *", "Europe/Berlin");

        schedule.NextTick(Scheduled.At("2026-03-28T12:00:00Z")).ShouldBe(Scheduled.At("2026-03-29T01:00:00Z"));
        schedule.NextTick(Scheduled.At("2026-03-29T01:00:00Z")).ShouldBe(Scheduled.At("2026-03-30T00:30:00Z"));
        schedule.DueTicks(Scheduled.At("2026-03-28T12:00:00Z"), Scheduled.At("2026-03-29T01:00:00Z")).ShouldBe((Scheduled.At("2026-03-29T01:00:00Z"), false));
    }

    [Fact]
    public void A_tick_in_the_hour_repeated_by_the_autumn_change_fires_once()
    {
        // Europe/Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens at 00:30 and again at 01:30 UTC.
        var schedule = Schedule("30 2 * * *", "Europe/Berlin");

        schedule.NextTick(Scheduled.At("2026-10-24T12:00:00Z")).ShouldBe(Scheduled.At("2026-10-25T00:30:00Z"));
        schedule.NextTick(Scheduled.At("2026-10-25T00:30:00Z")).ShouldBe(Scheduled.At("2026-10-26T01:30:00Z"));
        schedule.DueTicks(Scheduled.At("2026-10-24T12:00:00Z"), Scheduled.At("2026-10-25T12:00:00Z")).ShouldBe((Scheduled.At("2026-10-25T00:30:00Z"), false));
        // An expression that steps within the hour runs in both copies of it, as wall clocks show them.
        var halfHourly = Schedule("*/30 * * * *", "Europe/Berlin");
        halfHourly.NextTick(Scheduled.At("2026-10-25T00:00:00Z")).ShouldBe(Scheduled.At("2026-10-25T00:30:00Z"));
        halfHourly.NextTick(Scheduled.At("2026-10-25T00:30:00Z")).ShouldBe(Scheduled.At("2026-10-25T01:00:00Z"));
        halfHourly.NextTick(Scheduled.At("2026-10-25T01:00:00Z")).ShouldBe(Scheduled.At("2026-10-25T01:30:00Z"));
    }

    [Fact]
    public void Due_ticks_are_those_after_the_last_up_to_now_inclusive_the_latest_and_whether_more_were_missed()
    {
        var hourly = Schedule("0 * * * *");

        hourly.DueTicks(Scheduled.At("2026-11-29T01:00:00Z"), Scheduled.At("2026-11-29T01:59:59Z")).ShouldBeNull();
        hourly.DueTicks(Scheduled.At("2026-11-29T01:00:00Z"), Scheduled.At("2026-11-29T02:00:00Z")).ShouldBe((Scheduled.At("2026-11-29T02:00:00Z"), false));
        hourly.DueTicks(Scheduled.At("2026-11-29T01:00:00Z"), Scheduled.At("2026-11-29T04:30:00Z")).ShouldBe((Scheduled.At("2026-11-29T04:00:00Z"), true));
        // A dense schedule missed for a week: the latest tick without stepping through each.
        Schedule("* * * * * *").DueTicks(Scheduled.At("2026-11-01T00:00:00Z"), Scheduled.At("2026-11-08T00:00:00.5Z")).ShouldBe((Scheduled.At("2026-11-08T00:00:00Z"), true));
        // A sparse one missed for longer than that window.
        Schedule("0 0 1 1 *").DueTicks(Scheduled.At("2025-06-01T00:00:00Z"), Scheduled.At("2026-11-29T00:00:00Z")).ShouldBe((Scheduled.At("2026-01-01T00:00:00Z"), false));
    }
}
