using Skiff.Agent.Locations;
using Skiff.Core.Limits;

namespace Skiff.Agent.Tests.CodeServers;

/// <summary>
/// Standby processes: the next version of a location, and runs, start in a process that was started ahead of
/// need, and the release cannot tell it from a cold start. Real releases of the test app.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class StandbyTests(Releases releases)
{
    [Fact]
    public async Task The_next_version_and_its_runs_start_in_standbys_and_see_what_a_cold_start_sees()
    {
        await using var warm = new AgentHarness(releases);
        await using var cold = new AgentHarness(releases, options => WithStandbys(options, 0));

        var warmView = await WhoAmIAfterSwapAsync(warm);
        var coldView = await WhoAmIAfterSwapAsync(cold);

        // The activation of v2 and the run each took a standby; the cold agent never had one.
        warm.Agent.StandbysTaken.ShouldBe(2);
        cold.Agent.StandbysTaken.ShouldBe(0);
        warmView.ShouldContain("entry Skiff.Sdk.TestApp;");
        warmView.ShouldContain($"release {releases.V2};");
        warmView.ShouldContain("location analytics;");
        warmView.Replace(warm.CacheDirectory, "CACHE").ShouldBe(coldView.Replace(cold.CacheDirectory, "CACHE"));
    }

    [Fact]
    public async Task A_launch_of_another_shape_starts_cold_and_a_stopped_agent_leaves_no_standby_running()
    {
        var harness = new AgentHarness(releases);
        var cache = harness.CacheDirectory;
        try
        {
            (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();
            await harness.Agent.StandbysStartedAsync();
            HostProcesses.Name(StandbyProcesses(cache).ShouldHaveSingleItem()).ShouldBe("skiff-standby", "named for ps -e, top and pgrep");

            // A memory limit is part of the process's environment: the waiting standby cannot become this.
            var limited = await harness.ActivateAsync("analytics", releases.V2, new LocationSettings { MemoryLimit = MemoryLimit.Parse("400MiB") });
            limited.Succeeded.ShouldBeTrue(limited.Error);
            harness.Agent.StandbysTaken.ShouldBe(0);
            await harness.Agent.StandbysStartedAsync();
            StandbyProcesses(cache).Count.ShouldBe(2, "one for each shape, within the default capacity");
        }
        finally
        {
            await harness.DisposeAsync();
        }

        StandbyProcesses(cache).ShouldBeEmpty();
    }

    private async Task<string> WhoAmIAfterSwapAsync(AgentHarness harness)
    {
        (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();
        await harness.Agent.StandbysStartedAsync();
        var swapped = await harness.ActivateAsync("analytics", releases.V2);
        swapped.Succeeded.ShouldBeTrue(swapped.Error);
        await harness.Agent.StandbysStartedAsync();
        var run = await harness.Agent.StartRunAsync("analytics", "whoami", null, null, AgentHarness.Timeout());
        var events = await AgentHarness.CollectAsync(run);
        events.ShouldContain(e => (string?)e["message"] == "variant v2");
        return events.Select(e => (string?)e["message"]).Single(m => m != null && m.StartsWith("entry ", StringComparison.Ordinal))!;
    }

    private static AgentOptions WithStandbys(AgentOptions options, int standbys) => new()
    {
        CacheDirectory = options.CacheDirectory,
        RestartBackoff = options.RestartBackoff,
        ActivationTimeout = options.ActivationTimeout,
        Standbys = standbys,
    };

    /// <summary>Live standby processes of the agent with this cache: their command line names its standby folder.</summary>
    private static List<int> StandbyProcesses(string cache) =>
        [.. Directory.EnumerateDirectories("/proc")
            .Select(d => (Pid: int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0, Dir: d))
            .Where(p => p.Pid > 0 && ReadCommandLine(p.Dir).Contains(Path.Combine(cache, "standby"), StringComparison.Ordinal)
                && ReadCommandLine(p.Dir).Contains("Skiff.Standby.dll", StringComparison.Ordinal))
            .Select(p => p.Pid)];

    private static string ReadCommandLine(string processDirectory)
    {
        try
        {
            return File.ReadAllText(Path.Combine(processDirectory, "cmdline")).Replace('\0', ' ');
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }
}
