using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Skiff.Agent.Locations;
using Skiff.Sdk.Protocol;

namespace Skiff.Agent.Tests.Locations;

/// <summary>
/// A pool's replaced release drains (docs/tasks.md, "Pins"): the test app declares a task, so its location is a pool. The
/// drain period runs on a fake clock, so a drain ends when the test says.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class DrainTests(Releases releases)
{
    private static readonly TimeSpan DrainIdle = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task A_rollback_onto_a_draining_release_serves_it_live_and_the_release_is_never_reported_stopped_while_it_runs()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var harness = new AgentHarness(releases, options => new AgentOptions
        {
            CacheDirectory = options.CacheDirectory,
            ActivationTimeout = options.ActivationTimeout,
            DrainIdle = DrainIdle,
        }, time);
        (await harness.ActivateAsync("pool", releases.V1)).Succeeded.ShouldBeTrue();
        (await harness.ActivateAsync("pool", releases.V2)).Succeeded.ShouldBeTrue();
        // Rolled back while V1 still drains: V1 is started again and goes live, and V2 drains beside the first V1.
        (await harness.ActivateAsync("pool", releases.V1)).Succeeded.ShouldBeTrue();
        var live = harness.Agent.Describe("pool")!.CodeServerProcessId;

        time.Advance(DrainIdle);
        await harness.Agent.DrainsEndedAsync().WaitAsync(AgentHarness.Deadline);
        var pinned = await harness.Agent.RunTaskAsync(
            new RunTaskRequest("call-1", "r-1:op:1", "pool", "double", "r-1", "op", 1, JsonValue.Create(21), Pin: releases.V1.Hex[..12]), null, AgentHarness.Timeout());

        pinned.Succeeded.ShouldBeTrue(pinned.Error?.Message);
        ((int?)pinned.Output).ShouldBe(42);
        harness.Agent.Describe("pool")!.ShouldSatisfyAllConditions(
            status => status.Release.ShouldBe(releases.V1),
            status => status.CodeServerProcessId.ShouldBe(live));
        var reports = new List<AgentReport>();
        while (harness.Agent.Reports.TryRead(out var report))
        {
            reports.Add(report);
        }

        // The server accepts a pin to a replaced release by its newest report: the first V1's end must not read as V1's.
        var shown = string.Join('\n', reports.Select(r => $"{r.Release.Short} {r.Kind} {r.Message}"));
        reports.Where(r => r.Release == releases.V2).Select(r => r.Kind).ShouldBe([AgentReportKind.Activated, AgentReportKind.Draining, AgentReportKind.Stopped], shown);
        reports.Where(r => r.Release == releases.V1).Select(r => r.Kind).ShouldBe([AgentReportKind.Activated, AgentReportKind.Draining, AgentReportKind.Activated], shown);
    }

    [Fact]
    public async Task A_draining_release_left_down_after_too_many_crashes_stops_draining_at_once()
    {
        await using var harness = new AgentHarness(releases, options => new AgentOptions
        {
            CacheDirectory = options.CacheDirectory,
            ActivationTimeout = options.ActivationTimeout,
            RestartBackoff = TimeSpan.FromMilliseconds(20),
            MaxCrashes = 5,
            DrainIdle = DrainIdle,
        });
        (await harness.ActivateAsync("pool", releases.CrashLoop, releases.CrashLoopSettings(out var crashNow))).Succeeded.ShouldBeTrue();
        await File.WriteAllTextAsync(crashNow, "");
        (await harness.ActivateAsync("pool", releases.V1)).Succeeded.ShouldBeTrue();

        // Long before the drain period: it ends once the release is left down, since it could only refuse its pinned calls.
        var stopped = await harness.WaitForReportAsync("pool", AgentReportKind.Stopped);

        stopped.Release.ShouldBe(releases.CrashLoop);
        // Replaced while restarting, it drained until left down; left down before the swap (a slow activation), it stopped at once.
        stopped.Message.ShouldBeOneOf(
            $"no longer draining: its code server was left down after too many crashes (replaced by {releases.V1.Short})",
            $"replaced by {releases.V1.Short}");
    }

    [Fact]
    public async Task A_draining_release_keeps_its_unpacked_folders_over_the_cache_budget_until_its_drain_ends()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var harness = new AgentHarness(releases, options => new AgentOptions
        {
            CacheDirectory = options.CacheDirectory,
            ActivationTimeout = options.ActivationTimeout,
            CacheBudgetBytes = 1,
            DrainIdle = DrainIdle,
        }, time);
        var v1Source = Path.Combine(harness.CacheDirectory, "releases", "sources", releases.V1Build.Source.Hex);
        (await harness.ActivateAsync("pool", releases.V1)).Succeeded.ShouldBeTrue();
        (await harness.ActivateAsync("pool", releases.V2)).Succeeded.ShouldBeTrue();
        // The swap's eviction, over budget, has run.
        await harness.Agent.StandbysStartedAsync().WaitAsync(AgentHarness.Deadline);

        Directory.Exists(v1Source).ShouldBeTrue("V1 drains, so what it runs from is in use");
        var pinned = await harness.Agent.RunTaskAsync(
            new RunTaskRequest("call-1", "r-1:op:1", "pool", "double", "r-1", "op", 1, JsonValue.Create(21), Pin: releases.V1.Hex[..12]), null, AgentHarness.Timeout());
        pinned.Succeeded.ShouldBeTrue(pinned.Error?.Message);

        time.Advance(DrainIdle);
        await harness.Agent.DrainsEndedAsync().WaitAsync(AgentHarness.Deadline);
        Directory.Exists(v1Source).ShouldBeFalse("its drain ended, and the cache is over budget");
    }
}
