using Skiff.Agent.Locations;

namespace Skiff.Agent.Tests.Locations;

[Collection(AgentCollection.Name)]
public sealed class ActivationTests(Releases releases)
{
    [Fact]
    public async Task First_activation_fetches_and_unpacks_everything_and_lists_the_definitions()
    {
        await using var harness = new AgentHarness(releases);

        var result = await harness.ActivateAsync("analytics", releases.V1);

        result.Succeeded.ShouldBeTrue(result.Error);
        result.Definitions!.Select(j => (string?)j!["name"]).ShouldContain("hold");
        // The test app declares a task, so the location is a pool for it: the server is told with its schemas and retry policy.
        var task = result.Tasks.ShouldNotBeNull().ShouldHaveSingleItem()!;
        ((string?)task["name"]).ShouldBe("double");
        ((string?)task["description"]).ShouldBe("Doubles a number");
        task["input_schema"].ShouldNotBeNull();
        ((int?)task["retry"]?["max_attempts"]).ShouldBe(1);
        result.PackagesUnpacked.ShouldBe(releases.V1Build.Packages.Select(p => p.Package.Blob).Distinct().Count() + 1);
        // Every distinct package blob, the source, and the two manifests.
        result.BlobsFetched.ShouldBe(releases.V1Build.Packages.Select(p => p.Package.Blob).Distinct().Count() + 3);
        result.Timings.ProcessStart.ShouldBeGreaterThan(TimeSpan.Zero);
        result.Timings.Total.ShouldBeGreaterThanOrEqualTo(result.Timings.ProcessStart + result.Timings.Ready);
        var status = harness.Agent.Describe("analytics")!;
        status.Release.ShouldBe(releases.V1);
        status.Health.ShouldBe(VersionHealth.Healthy);
    }

    [Fact]
    public async Task A_source_only_release_reuses_the_environment_and_swaps_without_a_gap()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();
        var fetchedBefore = harness.Agent.BlobsFetched;
        var v1Pid = harness.Agent.Describe("analytics")!.CodeServerProcessId;

        // Watch the location for the whole swap: at no moment may it be without a live, healthy version.
        using var watching = new CancellationTokenSource();
        var gaps = 0;
        var watcher = Task.Run(() =>
        {
            while (!watching.IsCancellationRequested)
            {
                if (harness.Agent.Describe("analytics") is not { Health: VersionHealth.Healthy })
                {
                    gaps++;
                }
            }
        });
        var result = await harness.ActivateAsync("analytics", releases.V2);
        await watching.CancelAsync();
        await watcher;

        result.Succeeded.ShouldBeTrue(result.Error);
        releases.V2Build.EnvironmentDigest.ShouldBe(releases.V1Build.EnvironmentDigest);
        result.PackagesUnpacked.ShouldBe(1, "only the new source is unpacked");
        // The release manifest and the source blob: no package, and not the (unchanged) environment manifest.
        (harness.Agent.BlobsFetched - fetchedBefore).ShouldBe(2);
        gaps.ShouldBe(0);
        var status = harness.Agent.Describe("analytics")!;
        status.Release.ShouldBe(releases.V2);
        status.CodeServerProcessId.ShouldNotBe(v1Pid);
        // Stopped after the swap is reported, so the caller does not wait for the old process to exit.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!ProcessIsGone(v1Pid))
        {
            await Task.Delay(20, deadline.Token);
        }
    }

    [Theory]
    [InlineData("throws", "Main threw before handing over to Skiff")]
    [InlineData("bad_definitions", "A job named 'ok' is already declared")]
    [InlineData("hangs", "did not connect within 3 s")]
    public async Task A_version_that_cannot_start_leaves_the_old_one_serving_and_says_why(string variant, string expected)
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();
        var bad = variant switch
        {
            "throws" => releases.Throws,
            "bad_definitions" => releases.BadDefinitions,
            _ => releases.Hangs,
        };

        var result = await harness.ActivateAsync("analytics", bad, new LocationSettings { ActivationTimeout = TimeSpan.FromSeconds(3) });

        result.Succeeded.ShouldBeFalse();
        result.Error.ShouldNotBeNull();
        result.Error.ShouldContain(expected);
        result.Error.ShouldContain($"{releases.V1.Short} stays live");
        var status = harness.Agent.Describe("analytics")!;
        status.Release.ShouldBe(releases.V1);
        status.Health.ShouldBe(VersionHealth.Healthy);
        var run = await harness.Agent.StartRunAsync("analytics", "whoami", null, null, AgentHarness.Timeout());
        ((string?)(await run.Completion)["type"]).ShouldBe("run_succeeded");
    }

    [Fact]
    public async Task The_live_release_with_a_new_environment_starts_again_health_gated_and_a_failed_one_is_tried_again_when_sent_again()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();
        var first = harness.Agent.Describe("analytics")!.CodeServerProcessId;
        // The test app throws in Main with this variable: the code a location's environment breaks.
        var breaking = new LocationSettings { Environment = new Dictionary<string, string> { ["SKIFF_TESTAPP_THROW_IN_MAIN"] = "1" } };
        var working = new LocationSettings { Environment = new Dictionary<string, string> { ["GREETING"] = "hi" } };

        var failed = await harness.ActivateAsync("analytics", releases.V1, breaking);
        var failedAgain = await harness.ActivateAsync("analytics", releases.V1, breaking with { Environment = new Dictionary<string, string>(breaking.Environment) });
        var afterFailures = harness.Agent.Describe("analytics")!.CodeServerProcessId;
        var changed = await harness.ActivateAsync("analytics", releases.V1, working);
        var second = harness.Agent.Describe("analytics")!.CodeServerProcessId;
        var same = await harness.ActivateAsync("analytics", releases.V1, working with { Environment = new Dictionary<string, string> { ["GREETING"] = "hi" } });

        failed.Succeeded.ShouldBeFalse();
        failed.Error.ShouldNotBeNull().ShouldContain($"{releases.V1.Short} stays live");
        failedAgain.Succeeded.ShouldBeFalse("the settings that failed are not taken for the live version's");
        failedAgain.Error.ShouldNotBeNull().ShouldContain("Main threw before handing over to Skiff");
        afterFailures.ShouldBe(first);
        changed.Succeeded.ShouldBeTrue(changed.Error);
        second.ShouldNotBe(first);
        same.Succeeded.ShouldBeTrue();
        same.Timings.Total.ShouldBe(TimeSpan.Zero, "equal settings (by value) leave the live version as it is");
        harness.Agent.Describe("analytics")!.CodeServerProcessId.ShouldBe(second);
        working.ToString().ShouldNotContain("hi");
    }

    [Fact]
    public async Task Twenty_locations_are_live_at_once()
    {
        // Twenty code servers start at once on two CPUs, beside other test projects' builds: each gets far more than
        // the harness's usual time to turn healthy. It is a deadline against a hang; this test is about "all at once".
        var slow = TimeSpan.FromMinutes(4);
        await using var harness = new AgentHarness(releases, options => new AgentOptions
        {
            CacheDirectory = options.CacheDirectory,
            RestartBackoff = options.RestartBackoff,
            ActivationTimeout = slow,
        });

        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            harness.Agent.ActivateAsync($"team-{i:D2}", i % 2 == 0 ? releases.V1 : releases.V2, null, new CancellationTokenSource(slow).Token)));

        results.Where(r => !r.Succeeded).Select(r => r.Error).ShouldBeEmpty();
        var locations = harness.Agent.Locations;
        locations.Count.ShouldBe(20);
        locations.ShouldAllBe(l => l.Health == VersionHealth.Healthy);
        locations.Select(l => l.CodeServerProcessId).Distinct().Count().ShouldBe(20);
        var runs = await Task.WhenAll(locations.Take(3).Select(l => harness.Agent.StartRunAsync(l.Name, "ok", null, null, AgentHarness.Timeout())));
        foreach (var run in runs)
        {
            ((string?)(await run.Completion)["type"]).ShouldBe("run_succeeded");
        }
    }

    private static bool ProcessIsGone(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return process.HasExited;
        }
        catch (ArgumentException)
        {
            return true;
        }
    }
}
