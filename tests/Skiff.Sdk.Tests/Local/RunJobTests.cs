using Microsoft.Extensions.Logging;

namespace Skiff.Sdk.Tests.Local;

/// <summary><see cref="SkiffApp.RunJobAsync"/>: the public way a user's unit test runs a job in-process.</summary>
public sealed class RunJobTests
{
    private static void Define(JobCatalog jobs) =>
        jobs.Job("report")
            .Parameter("rows", 10, "how many rows")
            .Op("read", context => Task.FromResult(Enumerable.Range(1, context.Parameters.Get<int>("rows")).ToList()))
            .Op("summarize", context =>
            {
                var rows = context.Input<List<int>>("read");
                if (rows.Count == 0)
                {
                    throw new InvalidOperationException("nothing to summarize");
                }

                context.Logger.LogInformation("{Count} rows, total {Total}", rows.Count, rows.Sum());
                return Task.CompletedTask;
            }, dependsOn: ["read"]);

    [Fact]
    public async Task A_job_that_succeeds_returns_its_logs_and_events()
    {
        var result = await SkiffApp.RunJobAsync(Define, "report", new Dictionary<string, string> { ["rows"] = "4" });

        result.Outcome.ShouldBe("succeeded", result.ToString());
        result.Succeeded.ShouldBeTrue();
        result.Error.ShouldBeNull();
        result.Logs.ShouldBe(["4 rows, total 10"]);
        result.Events.Select(e => e.GetProperty("type").GetString()).ShouldBe(
            ["run_started", "op_started", "op_succeeded", "op_started", "log", "op_succeeded", "run_succeeded"]);
        result.Events[0].GetProperty("parameters").GetProperty("rows").GetInt64().ShouldBe(4);
    }

    [Fact]
    public async Task Parameters_left_out_take_their_defaults()
    {
        var result = await SkiffApp.RunJobAsync(Define, "report");

        result.Logs.ShouldBe(["10 rows, total 55"]);
    }

    [Fact]
    public async Task A_failing_op_is_an_outcome_with_the_reason_not_an_exception()
    {
        var result = await SkiffApp.RunJobAsync(Define, "report", new Dictionary<string, string> { ["rows"] = "0" });

        result.Outcome.ShouldBe("failed");
        result.Succeeded.ShouldBeFalse();
        result.Error.ShouldBe("op 'summarize' failed: nothing to summarize");
    }

    [Fact]
    public async Task A_canceled_token_cancels_the_run()
    {
        using var canceled = new CancellationTokenSource();
        await canceled.CancelAsync();

        var result = await SkiffApp.RunJobAsync(Define, "report", cancellationToken: canceled.Token);

        result.Outcome.ShouldBe("canceled", result.ToString());
    }

    [Fact]
    public async Task Bad_input_throws_before_anything_runs()
    {
        var unknown = await Should.ThrowAsync<ArgumentException>(() => SkiffApp.RunJobAsync(Define, "nightly"));
        unknown.Message.ShouldStartWith("There is no job 'nightly'. Jobs: report.");

        var bad = await Should.ThrowAsync<ParameterException>(() =>
            SkiffApp.RunJobAsync(Define, "report", new Dictionary<string, string> { ["rows"] = "many" }));
        bad.Message.ShouldContain("rows");
    }
}
