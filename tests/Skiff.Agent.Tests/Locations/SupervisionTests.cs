using System.Diagnostics;
using Skiff.Agent.Locations;

namespace Skiff.Agent.Tests.Locations;

[Collection(AgentCollection.Name)]
public sealed class SupervisionTests(Releases releases)
{
    [Fact]
    public async Task A_code_server_killed_with_sigkill_is_restarted_and_serves_again()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();
        var pid = harness.Agent.Describe("analytics")!.CodeServerProcessId;

        using (var kill = Process.Start("kill", ["-KILL", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(AgentHarness.Timeout());
        }

        var crashed = await harness.WaitForReportAsync("analytics", AgentReportKind.Crashed);
        var restarted = await harness.WaitForReportAsync("analytics", AgentReportKind.Restarted);

        crashed.Message.ShouldContain("SIGKILL");
        restarted.Message.ShouldContain("serving again");
        var status = harness.Agent.Describe("analytics")!;
        status.Health.ShouldBe(VersionHealth.Healthy);
        status.Restarts.ShouldBe(1);
        status.CodeServerProcessId.ShouldNotBe(pid);
        status.Release.ShouldBe(releases.V1);
    }

    [Fact]
    public async Task A_code_server_that_keeps_crashing_ends_unhealthy_instead_of_restarting_forever()
    {
        await using var harness = new AgentHarness(releases, options => new AgentOptions
        {
            CacheDirectory = options.CacheDirectory,
            RestartBackoff = TimeSpan.FromMilliseconds(20),
            MaxCrashes = 3,
        });
        (await harness.ActivateAsync("analytics", releases.CrashLoop, releases.CrashLoopSettings(out var crashNow))).Succeeded.ShouldBeTrue();
        await File.WriteAllTextAsync(crashNow, "");

        var unhealthy = await harness.WaitForReportAsync("analytics", AgentReportKind.Unhealthy);

        unhealthy.Message.ShouldContain("crashed 3 times");
        unhealthy.Message.ShouldContain("exited with code 3");
        var status = harness.Agent.Describe("analytics")!;
        status.Health.ShouldBe(VersionHealth.Unhealthy);
        status.CodeServerProcessId.ShouldBe(0);
    }
}
