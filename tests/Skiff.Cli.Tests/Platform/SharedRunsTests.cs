using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Skiff.Server.Metadata;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// <c>skiff deploy --runs shared</c> on a real server and agent: the location's runs execute together in one shared run
/// host, the setting is shown and kept, and <c>skiff locations set --runs isolated</c> gives each run its own process again
/// (docs/agent.md, "Shared run host"). One test, so one deploy (a build) serves it all.
/// </summary>
public sealed class SharedRunsTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    private EmbeddedPlatform Platform => fixture.Platform;

    [Fact]
    public async Task Runs_deployed_shared_run_in_one_process_and_set_back_to_isolated_each_get_their_own()
    {
        var project = fixture.Variant("shared", program => program.Replace(
            """    jobs.Job("etl",""",
            """
                jobs.Job("gate", "Waits for a file, then says which process ran it").RequiredParameter<string>("file").Run(async context =>
                {
                    while (!File.Exists(context.Parameters.Get<string>("file")))
                    {
                        await Task.Delay(20, context.CancellationToken);
                    }

                    context.Logger.LogInformation("ran in {Pid}", Environment.ProcessId);
                });

                jobs.Job("etl",
            """,
            StringComparison.Ordinal));
        var badDeploy = await Platform.SkiffAsync("deploy", project, "--location", "together", "--runs", "pooled");
        var deploy = await Platform.SkiffAsync("deploy", project, "--location", "together", "--runs", "shared");
        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        badDeploy.ExitCode.ShouldBe(2, badDeploy.ToString());
        var shown = JsonNode.Parse((await Platform.SkiffAsync("locations", "--json")).Stdout)!.AsArray().Single(l => (string?)l!["location"] == "together")!;
        ((string?)shown["runs"]).ShouldBe("shared");
        (await Platform.SkiffAsync("locations")).Stdout.ShouldContain("RUNS");

        var gate = fixture.Workspace.PathTo("shared-gate");
        var runs = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var started = await Platform.SkiffAsync("run", "together", "gate", "--param", $"file={gate}", "--detach");
            started.ExitCode.ShouldBe(0, started.ToString());
            runs.Add(started.Stdout.Trim());
        }

        foreach (var run in runs)
        {
            (await RunAsync(run)).Status.ShouldBe(RunStatuses.Running, "none can end before the gate opens: they wait together");
        }

        File.WriteAllText(gate, "");
        var pids = new List<string>();
        foreach (var run in runs)
        {
            pids.Add(await PidOfAsync(run));
        }

        pids.Distinct().Count().ShouldBe(1, "every run in the one shared run host");

        // Back to a process per run, from the next run on; bad input changes nothing.
        var bad = await Platform.SkiffAsync("locations", "set", "together", "--runs", "pooled");
        using var http = Platform.Http();
        var badApi = await http.PatchAsync("api/v1/locations/together", new StringContent("""{"runs":"pooled"}""", Encoding.UTF8, "application/json"));
        bad.ExitCode.ShouldBe(2, bad.ToString());
        badApi.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await badApi.Content.ReadAsStringAsync()).ShouldContain("must be \\u0022isolated\\u0022");
        (await Platform.Server.Store.GetLocationAsync("together", CancellationToken.None))!.Runs.ShouldBe(RunHostings.Shared);
        var set = await Platform.SkiffAsync("locations", "set", "together", "--runs", "isolated");
        set.ExitCode.ShouldBe(0, set.ToString());
        set.Stdout.ShouldContain("runs isolated");
        var first = await Platform.SkiffAsync("run", "together", "gate", "--param", $"file={gate}", "--detach");
        var second = await Platform.SkiffAsync("run", "together", "gate", "--param", $"file={gate}", "--detach");
        var isolated = new[] { await PidOfAsync(first.Stdout.Trim()), await PidOfAsync(second.Stdout.Trim()) };

        isolated.Distinct().Count().ShouldBe(2, "a process of its own per run");
        isolated.ShouldNotContain(pids[0]);
        (await Platform.Server.Store.ListAuditAsync("together", 10, CancellationToken.None)).Where(a => a.Action == "location.set").Select(a => a.Detail).ShouldBe(["runs=isolated"]);
    }

    private async Task<RunRecord> RunAsync(string id) =>
        await Platform.Server.Store.GetRunAsync(id, CancellationToken.None) ?? throw new InvalidOperationException($"run {id} is not recorded");

    /// <summary>Follows a run to its end (it must succeed) and reads the process id it logged.</summary>
    private async Task<string> PidOfAsync(string run)
    {
        var logs = await Platform.SkiffAsync("logs", run, "--follow");
        logs.ExitCode.ShouldBe(0, logs.ToString());
        (await RunAsync(run)).Status.ShouldBe(RunStatuses.Succeeded);
        var line = logs.Stdout.Split('\n').Single(l => l.Contains("ran in ", StringComparison.Ordinal));
        return line[(line.LastIndexOf("ran in ", StringComparison.Ordinal) + "ran in ".Length)..].Trim();
    }
}
