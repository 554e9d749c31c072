using System.Text.Json.Nodes;
using Skiff.Core.Limits;
using Skiff.Agent.Locations;

namespace Skiff.Agent.Tests.Runs;

[Collection(AgentCollection.Name)]
public sealed class RunTests(Releases releases)
{
    [Fact]
    public async Task A_run_started_on_version_1_finishes_on_version_1_after_version_2_went_live()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();
        var release = Path.Combine(releases.Scratch, Guid.NewGuid().ToString("N"));

        var run = await harness.Agent.StartRunAsync("analytics", "hold", new JsonObject { ["file"] = release }, null, AgentHarness.Timeout());
        var swap = await harness.ActivateAsync("analytics", releases.V2);
        await File.WriteAllTextAsync(release, "go");
        var events = await AgentHarness.CollectAsync(run);

        swap.Succeeded.ShouldBeTrue(swap.Error);
        ((string?)events.Last()["type"]).ShouldBe("run_succeeded");
        ((string?)events.First()["release"]).ShouldBe(releases.V1.ToString());
        events.ShouldContain(e => (string?)e["type"] == "log" && ((string)e["message"]!).StartsWith("variant v1", StringComparison.Ordinal));
        var after = await harness.Agent.StartRunAsync("analytics", "whoami", null, null, AgentHarness.Timeout());
        (await AgentHarness.CollectAsync(after)).ShouldContain(e => (string?)e["message"] == "variant v2");
    }

    [Fact]
    public async Task A_job_over_its_memory_limit_is_stopped_and_reported_while_another_location_keeps_running()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("greedy", releases.V1, new LocationSettings { MemoryLimit = MemoryLimit.Parse("256MiB") })).Succeeded.ShouldBeTrue();
        (await harness.ActivateAsync("steady", releases.V1)).Succeeded.ShouldBeTrue();
        var signal = Path.Combine(releases.Scratch, Guid.NewGuid().ToString("N"));
        var steady = await harness.Agent.StartRunAsync("steady", "hold", new JsonObject { ["file"] = signal }, null, AgentHarness.Timeout());

        var hog = await harness.Agent.StartRunAsync("greedy", "hog", null, null, AgentHarness.Timeout());
        var hogEnd = await hog.Completion.WaitAsync(AgentHarness.Deadline);
        var report = await harness.WaitForReportAsync("greedy", AgentReportKind.OutOfMemory);

        ((string?)hogEnd["type"]).ShouldBe("run_failed");
        ((bool?)hogEnd["out_of_memory"]).ShouldBe(true);
        ((string)hogEnd["reason"]!).ShouldContain("256MiB");
        report.Message.ShouldContain("out of memory");
        steady.Completion.IsCompleted.ShouldBeFalse("the other location's run is untouched");
        harness.Agent.Describe("steady")!.Health.ShouldBe(VersionHealth.Healthy);
        await File.WriteAllTextAsync(signal, "go");
        ((string?)(await steady.Completion.WaitAsync(AgentHarness.Deadline))["type"]).ShouldBe("run_succeeded");
    }

    [Fact]
    public async Task A_run_can_be_canceled_through_the_agent()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();
        var run = await harness.Agent.StartRunAsync("analytics", "slow", null, "cancel-me", AgentHarness.Timeout());
        await foreach (var e in run.Events.ReadAllAsync(AgentHarness.Timeout()))
        {
            if (e.Type == "progress")
            {
                break;
            }
        }

        await harness.Agent.CancelRunAsync("cancel-me", AgentHarness.Timeout());

        // "slow" never ends by itself: any end at all is the cancel's, and the deadline is only against a hang.
        ((string?)(await run.Completion.WaitAsync(AgentHarness.Deadline))["type"]).ShouldBe("run_canceled");
    }

    [Fact]
    public async Task Starting_a_run_on_a_location_without_a_live_version_is_a_clear_error()
    {
        await using var harness = new AgentHarness(releases);

        var error = await Should.ThrowAsync<Skiff.Agent.CodeServers.CodeServerException>(
            () => harness.Agent.StartRunAsync("nowhere", "ok", null, null, AgentHarness.Timeout()));

        error.Message.ShouldContain("'nowhere' has no live version");
    }
}
