using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Skiff.Server.Metadata;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// A job deployed with <c>.MaxConcurrent(1)</c> on a real server and agent: a second run waits queued and starts when
/// the first ends, a queued run can be canceled, and a location's own limit is set from the CLI (docs/run-queue.md).
/// One test, so one deploy (a build) serves it all.
/// </summary>
public sealed class RunQueueTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private EmbeddedPlatform Platform => fixture.Platform;

    [Fact]
    public async Task A_run_over_its_jobs_limit_waits_queued_and_starts_when_the_running_one_ends_and_a_location_limit_is_set_from_the_cli()
    {
        // A job that runs until the file its parameter names exists, at most one run at a time.
        var project = fixture.Variant("queued", program => program.Replace(
            """    jobs.Job("etl",""",
            """
                jobs.Job("gate", "Waits for a file").MaxConcurrent(1).RequiredParameter<string>("file").Run(async context =>
                {
                    while (!File.Exists(context.Parameters.Get<string>("file")))
                    {
                        await Task.Delay(20, context.CancellationToken);
                    }
                });

                jobs.Job("etl",
            """,
            StringComparison.Ordinal));
        var deploy = await Platform.SkiffAsync("deploy", project, "--location", "queue");
        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        Directory.CreateDirectory(fixture.Workspace.PathTo("gates"));

        var first = await Platform.SkiffAsync("run", "queue", "gate", "--param", $"file={Gate(1)}", "--detach");
        var second = await Platform.SkiffAsync("run", "queue", "gate", "--param", $"file={Gate(2)}", "--detach");
        var third = await Platform.SkiffAsync("run", "queue", "gate", "--param", $"file={Gate(3)}", "--detach");
        first.ExitCode.ShouldBe(0, first.ToString());
        second.ExitCode.ShouldBe(0, second.ToString());
        third.ExitCode.ShouldBe(0, third.ToString());
        var (r1, r2, r3) = (first.Stdout.Trim(), second.Stdout.Trim(), third.Stdout.Trim());
        first.Stderr.ShouldNotContain("queued");
        second.Stderr.ShouldContain($"run {r2} is queued: location 'queue' or job 'gate' is at its concurrency limit");
        (await RunAsync(r1)).Status.ShouldBe(RunStatuses.Running);
        (await RunAsync(r2)).Status.ShouldBe(RunStatuses.Queued);

        // Followed while it waits: the follower stays until the run has started and ended.
        await using var follower = Platform.StartSkiff("logs", r2, "--follow", "--json");
        var cancel = await Platform.SkiffAsync("cancel", r3);
        cancel.ExitCode.ShouldBe(0, cancel.ToString());
        cancel.Stdout.ShouldContain($"run {r3} was canceled while queued; it never started");
        var listed = await Platform.SkiffAsync("runs", "queue");
        listed.Stdout.ShouldContain("waiting ", Case.Sensitive, listed.ToString());

        File.WriteAllText(Gate(1), "");
        var started = await WaitForAsync(async () => await RunAsync(r2) is { Status: RunStatuses.Running } run ? run : null);
        (await RunAsync(r1)).Status.ShouldBe(RunStatuses.Succeeded);
        started.QueueWait.ShouldNotBeNull();
        started.QueueWait.Value.ShouldBeGreaterThan(TimeSpan.Zero);
        File.WriteAllText(Gate(2), "");
        await follower.WaitForLineAsync(line => line.Contains("\"run_succeeded\"", StringComparison.Ordinal), Deadline);

        var canceled = await RunAsync(r3);
        canceled.Status.ShouldBe(RunStatuses.Canceled);
        canceled.Agent.ShouldBeNull();
        follower.Output.ShouldContain("\"run_started\"");
        var json = JsonNode.Parse((await Platform.SkiffAsync("runs", "queue", "--json")).Stdout)!.AsArray();
        var queuedRun = json.Single(r => (string?)r!["run"] == r2)!;
        ((long?)queuedRun["queue_wait_ms"]).ShouldBe((long)started.QueueWait.Value.TotalMilliseconds);
        ((string?)queuedRun["queued_at"]).ShouldNotBeNull();
        json.Single(r => (string?)r!["run"] == r1)!["queue_wait_ms"]!.GetValue<long>().ShouldBeLessThan(1000);

        await A_location_limit_is_set_shown_and_cleared_from_the_cli_and_bad_input_changes_nothing();
    }

    /// <summary>Part of the test above, on its location: one deploy (a build) serves both.</summary>
    private async Task A_location_limit_is_set_shown_and_cleared_from_the_cli_and_bad_input_changes_nothing()
    {
        var set = await Platform.SkiffAsync("locations", "set", "queue", "--max-concurrent", "3");
        var shown = await Platform.SkiffAsync("locations", "--json");
        var negative = await Platform.SkiffAsync("locations", "set", "queue", "--max-concurrent", "-1");
        var zero = await Platform.SkiffAsync("locations", "set", "queue", "--max-concurrent", "0");
        var nothing = await Platform.SkiffAsync("locations", "set", "queue");
        var unknown = await Platform.SkiffAsync("locations", "set", "nowhere", "--max-concurrent", "2");
        using var http = Platform.Http();
        var badType = await http.PatchAsync("api/v1/locations/queue", Json("""{"max_concurrent":"two"}"""));
        var badField = await http.PatchAsync("api/v1/locations/queue", Json("""{"max_concurent":2}"""));
        var table = await Platform.SkiffAsync("locations");

        set.ExitCode.ShouldBe(0, set.ToString());
        set.Stdout.ShouldContain("queue: max concurrent runs 3");
        ((int?)JsonNode.Parse(shown.Stdout)!.AsArray().Single(l => (string?)l!["location"] == "queue")!["max_concurrent"]).ShouldBe(3);
        negative.ExitCode.ShouldBe(2, negative.ToString());
        negative.Stderr.ShouldContain("--max-concurrent takes a whole number of 1 or more, or `none` to remove the limit; not '-1'. Nothing was changed.");
        zero.ExitCode.ShouldBe(2, zero.ToString());
        nothing.ExitCode.ShouldBe(2, nothing.ToString());
        unknown.ExitCode.ShouldNotBe(0, unknown.ToString());
        unknown.Stderr.ShouldContain("there is no location 'nowhere'");
        badType.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await badType.Content.ReadAsStringAsync()).ShouldContain("\\u0022max_concurrent\\u0022 must be a whole number of 1 or more, or null for no limit");
        badField.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await badField.Content.ReadAsStringAsync()).ShouldContain("is not a location setting");
        (await Platform.Server.Store.GetLocationAsync("queue", CancellationToken.None))!.MaxConcurrent.ShouldBe(3);
        table.Stdout.ShouldContain("MAX RUNS");

        // At a location limit of 1, a run of a job with no limit of its own waits too, and starts once the limit is cleared.
        (await Platform.SkiffAsync("locations", "set", "queue", "--max-concurrent", "1")).ExitCode.ShouldBe(0);
        var holding = await Platform.SkiffAsync("run", "queue", "gate", "--param", $"file={Gate(4)}", "--detach");
        var waiting = await Platform.SkiffAsync("run", "queue", "hello", "--detach");
        waiting.Stderr.ShouldContain("is queued", Case.Sensitive, waiting.ToString());
        (await RunAsync(holding.Stdout.Trim())).Status.ShouldBe(RunStatuses.Running);
        (await RunAsync(waiting.Stdout.Trim())).Status.ShouldBe(RunStatuses.Queued);

        var cleared = await Platform.SkiffAsync("locations", "set", "queue", "--max-concurrent", "none");
        cleared.ExitCode.ShouldBe(0, cleared.ToString());
        cleared.Stdout.ShouldContain("queue: max concurrent runs none (no limit)");
        (await Platform.Server.Store.GetLocationAsync("queue", CancellationToken.None))!.MaxConcurrent.ShouldBeNull();
        (await WaitForAsync(async () => await RunAsync(waiting.Stdout.Trim()) is { Status: RunStatuses.Succeeded } run ? run : null)).QueueWait.ShouldNotBeNull();
        File.WriteAllText(Gate(4), "");
        var audit = await Platform.Server.Store.ListAuditAsync("queue", 10, CancellationToken.None);
        audit.Where(a => a.Action == "location.set").Select(a => a.Detail).ShouldBe(["max_concurrent=none", "max_concurrent=1", "max_concurrent=3"]);
    }

    private string Gate(int i) => fixture.Workspace.PathTo(Path.Combine("gates", $"open-{i}"));

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private async Task<RunRecord> RunAsync(string id) =>
        await Platform.Server.Store.GetRunAsync(id, CancellationToken.None) ?? throw new InvalidOperationException($"run {id} is not recorded");

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

            (DateTime.UtcNow < deadline).ShouldBeTrue("the queued run did not start in time");
            await Task.Delay(50);
        }
    }
}
