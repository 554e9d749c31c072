using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Server.Metadata;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// Runs outlive the link between server and agent: events the server missed while they were apart are
/// resent when they reconnect, and a run whose agent does not come back (or came back without it) ends
/// failed with a reason, never left running.
/// </summary>
public sealed class ReconnectTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    // A job that logs, waits until the test lets it go on (a file appears), then logs more and ends.
    private const string GateJob = """
        return await SkiffApp.RunAsync(args, jobs =>
        {
            jobs.Job("gate", "Waits for a file, then finishes")
                .Parameter("path", "", "the file to wait for")
                .Run(async context =>
                {
                    var path = context.Parameters.Get<string>("path");
                    context.Logger.LogInformation("waiting for the gate");
                    while (!File.Exists(path))
                    {
                        await Task.Delay(20, context.CancellationToken);
                    }

                    for (var i = 1; i <= 5; i++)
                    {
                        context.Logger.LogInformation("through the gate, line {Line}", i);
                    }

                    File.WriteAllText(path + ".passed", "");
                });
        """;

    [Fact]
    public async Task Events_a_run_emits_while_the_server_is_down_arrive_after_it_restarts()
    {
        await using var platform = await EmbeddedPlatform.StartAsync(fixture.Workspace.PathTo("platform-server-down"));
        var (runId, gate) = await StartGatedRunAsync(platform, "server-down");

        await platform.StopServerAsync();
        await File.WriteAllTextAsync(gate, "");
        await WaitForFileAsync(gate + ".passed");
        await platform.StartServerAsync();
        var run = await WaitForEndAsync(platform, runId);
        var events = (await platform.Server.Store.GetRunEventsAsync(runId, 0, 1000, CancellationToken.None)).Select(e => JsonNode.Parse(e.Json)!).ToList();
        var logs = await platform.SkiffAsync("logs", runId);

        run.Status.ShouldBe(RunStatuses.Succeeded, run.Reason);
        events.Select(e => (long)e["seq"]!).ShouldBe(Enumerable.Range(1, events.Count).Select(i => (long)i));
        ((string?)events[^1]["type"]).ShouldBe("run_succeeded");
        events.Count(e => ((string?)e["message"])?.StartsWith("through the gate", StringComparison.Ordinal) == true).ShouldBe(5);
        logs.Stdout.ShouldContain("through the gate, line 5");
    }

    [Fact]
    public async Task A_run_whose_agent_restarted_without_it_ends_failed_saying_so()
    {
        await using var platform = await EmbeddedPlatform.StartAsync(fixture.Workspace.PathTo("platform-agent-restart"));
        var (runId, _) = await StartGatedRunAsync(platform, "agent-restart");

        await platform.RestartAsync();
        var run = await WaitForEndAsync(platform, runId);
        var events = await platform.Server.Store.GetRunEventsAsync(runId, 0, 1000, CancellationToken.None);
        var follow = await platform.SkiffAsync("logs", runId);

        run.Status.ShouldBe(RunStatuses.Failed);
        run.Reason.ShouldNotBeNull().ShouldContain("restarted while this run was going");
        var last = JsonNode.Parse(events[^1].Json)!;
        ((string?)last["type"]).ShouldBe("run_failed");
        ((long)last["seq"]!).ShouldBe(events.Count);
        ((string?)last["reason"]).ShouldBe(run.Reason);
        follow.Stdout.ShouldContain("restarted while this run was going");
    }

    [Fact]
    public async Task A_run_whose_agent_stays_away_past_the_grace_period_ends_failed()
    {
        await using var platform = await EmbeddedPlatform.StartAsync(fixture.Workspace.PathTo("platform-agent-gone"), gracePeriod: TimeSpan.FromSeconds(1));
        var (runId, _) = await StartGatedRunAsync(platform, "agent-gone");

        await platform.StopAgentAsync();
        var run = await WaitForEndAsync(platform, runId);
        var last = JsonNode.Parse((await platform.Server.Store.GetRunEventsAsync(runId, 0, 1000, CancellationToken.None))[^1].Json)!;

        run.Status.ShouldBe(RunStatuses.Failed);
        run.Reason.ShouldNotBeNull().ShouldContain("did not come back within 1 s");
        ((string?)last["type"]).ShouldBe("run_failed");
    }

    private async Task<(string RunId, string Gate)> StartGatedRunAsync(EmbeddedPlatform platform, string location)
    {
        // One gated program for the three tests: it is built once, and each test's platform gets it from that build.
        var project = PlatformFixture.SharedVariant("gated", text => text.Replace(
            "return await SkiffApp.RunAsync(args, jobs =>\n{",
            GateJob,
            StringComparison.Ordinal));
        var deploy = await platform.SkiffAsync("deploy", project, "--location", location, "--json");
        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        var gate = fixture.Workspace.PathTo($"gate-{location}");
        var started = await platform.SkiffAsync("run", location, "gate", "--param", $"path={gate}", "--detach");
        started.ExitCode.ShouldBe(0, started.ToString());
        var runId = started.Stdout.Trim();

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!(await platform.Server.Store.GetRunEventsAsync(runId, 0, 100, deadline.Token)).Any(e => e.Json.Contains("waiting for the gate", StringComparison.Ordinal)))
        {
            await Task.Delay(20, deadline.Token);
        }

        return (runId, gate);
    }

    private static async Task<RunRecord> WaitForEndAsync(EmbeddedPlatform platform, string runId)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            // A lost run's status is stored before the run_failed event the server writes for it
            // (RunService.FailLostRunAsync): a run has ended once both are.
            var run = await platform.Server.Store.GetRunAsync(runId, deadline.Token);
            if (run is { Status: not RunStatuses.Running }
                && await platform.Server.Store.GetRunEventsAsync(runId, 0, 1000, deadline.Token) is [.., var last]
                && RunEvents.IsEnd(JsonNode.Parse(last.Json)!.AsObject()))
            {
                return run;
            }

            await Task.Delay(20, deadline.Token);
        }
    }

    private static async Task WaitForFileAsync(string path)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!File.Exists(path))
        {
            await Task.Delay(20, deadline.Token);
        }
    }
}
