using System.Text.Json;
using Skiff.Sdk.Protocol;

namespace Skiff.Sdk.Tests.Definitions;

/// <summary>Declaring cron schedules on jobs: checked where declared, described to the server as declared.</summary>
public sealed class ScheduleDeclarationTests
{
    private static readonly Func<OpContext, Task> Nothing = _ => Task.CompletedTask;

    [Fact]
    public void A_schedule_travels_in_the_definitions_with_its_zone_parameters_and_missed_tick_policy()
    {
        var catalog = new JobCatalog();
        catalog.Job("nightly")
            .Schedule("0 2 * * *", timeZone: "Europe/Berlin", parameters: new { day = "yesterday", rows = 5 }, missed: MissedTicks.RunOnce)
            .Schedule("*/30 * * * * *")
            .Parameter("day", "today")
            .Parameter("rows", 1)
            .Run(Nothing);
        catalog.Job("plain").Run(Nothing);

        var json = JsonSerializer.Serialize(DefinitionsJson.Describe(catalog.Build()), ProtocolJson.Wire.IReadOnlyListJobDescription);
        using var document = JsonDocument.Parse(json);
        var nightly = document.RootElement[0].GetProperty("schedules");

        nightly.GetArrayLength().ShouldBe(2);
        nightly[0].GetProperty("cron").GetString().ShouldBe("0 2 * * *");
        nightly[0].GetProperty("time_zone").GetString().ShouldBe("Europe/Berlin");
        nightly[0].GetProperty("params").GetRawText().ShouldBe("""{"day":"yesterday","rows":5}""");
        nightly[0].GetProperty("missed").GetString().ShouldBe("run_once");
        nightly[1].GetProperty("time_zone").GetString().ShouldBe("UTC");
        nightly[1].GetProperty("missed").GetString().ShouldBe("skip");
        // A job without schedules is described exactly as before schedules existed.
        document.RootElement[1].TryGetProperty("schedules", out _).ShouldBeFalse();
    }

    [Theory]
    [InlineData("0 2 * *")]
    [InlineData("61 * * * *")]
    [InlineData("every night")]
    [InlineData("")]
    public void A_cron_expression_that_does_not_parse_is_refused_with_the_forms_that_do(string cron)
    {
        var refused = Should.Throw<ArgumentException>(() => new JobCatalog().Job("nightly").Schedule(cron));

        refused.Message.ShouldContain($"'{cron}' is not a cron expression");
        refused.Message.ShouldContain("'0 2 * * *'");
    }

    [Fact]
    public void An_unknown_time_zone_is_refused_with_an_example_of_one()
    {
        var refused = Should.Throw<ArgumentException>(() => new JobCatalog().Job("nightly").Schedule("0 2 * * *", timeZone: "Europe/Atlantis"));

        refused.Message.ShouldContain("'Europe/Atlantis' is not a time zone");
        refused.Message.ShouldContain("Europe/Berlin");
    }

    [Fact]
    public void Two_schedules_with_the_same_expression_and_zone_are_refused()
    {
        var job = new JobCatalog().Job("nightly").Schedule("0 2 * * *", "Europe/Berlin");

        Should.Throw<ArgumentException>(() => job.Schedule(" 0 2 * * * ", "Europe/Berlin", new { day = "x" }))
            .Message.ShouldContain("already has a schedule '0 2 * * *' in Europe/Berlin");
        job.Schedule("0 2 * * *", "UTC"); // another zone is another schedule
    }

    [Fact]
    public void Schedule_parameters_the_job_does_not_declare_or_of_the_wrong_type_fail_the_build_naming_each()
    {
        var catalog = new JobCatalog();
        catalog.Job("nightly").Schedule("0 2 * * *", parameters: new { day = 3, color = "red" }).Parameter("day", "today").Run(Nothing);

        var refused = Should.Throw<ArgumentException>(() => catalog.Build());

        refused.Message.ShouldContain("schedule '0 2 * * *' of job 'nightly'");
        refused.Message.ShouldContain("no parameter 'color'");
        refused.Message.ShouldContain("parameter 'day' must be a string");
    }

    [Fact]
    public void Schedule_parameters_may_be_a_dictionary_and_a_value_of_an_unsupported_type_is_refused()
    {
        var catalog = new JobCatalog();
        catalog.Job("nightly").Schedule("@daily", parameters: new Dictionary<string, object> { ["rows"] = 7L }).Parameter("rows", 1L).Run(Nothing);
        catalog.Build().Single().Schedules.Single().Parameters.ToJsonString().ShouldBe("""{"rows":7}""");

        Should.Throw<ArgumentException>(() => new JobCatalog().Job("x").Schedule("@daily", parameters: new { when = DateTime.UnixEpoch }))
            .Message.ShouldContain("schedule parameter 'when' is a DateTime");
    }
}
