using System.Text.Json.Nodes;
using Skiff.Agent.CodeServers;
using Skiff.Agent.Locations;
using Skiff.Core.Limits;

namespace Skiff.Agent.Tests.Sandboxing;

/// <summary>
/// Jobs written to attack, on a sandboxing agent (scripts/test.sh installs bubblewrap; the tests run as root, as
/// an agent does): each tries what a hostile tenant of a shared agent would, and the test checks it was refused
/// and that the location beside it noticed nothing.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class SandboxTests(Releases releases) : IDisposable
{
    private readonly string _serverData = Directory.CreateTempSubdirectory("skiff-server-data-").FullName;

    [Fact]
    public async Task A_job_cannot_read_the_servers_data_write_the_cache_see_another_location_or_signal_it()
    {
        // World-readable on purpose: what keeps them from the job must be the sandbox, not the file modes.
        var token = Path.Combine(_serverData, "token");
        var database = Path.Combine(_serverData, "skiff.db");
        await File.WriteAllTextAsync(token, "secret-token");
        await File.WriteAllTextAsync(database, "SQLite format 3");
        File.SetUnixFileMode(_serverData, (UnixFileMode)0b111_101_101);
        await using var harness = Sandboxed();
        (await harness.ActivateAsync("victim", releases.V1)).Succeeded.ShouldBeTrue();
        (await harness.ActivateAsync("attacker", releases.V1)).Succeeded.ShouldBeTrue();
        var victim = harness.Agent.Describe("victim")!;
        var mark = await harness.Agent.StartRunAsync("victim", "mark", null, null, AgentHarness.Timeout());
        var marked = await NextLogAsync(mark, "marked ");
        var victimScratch = marked["marked ".Length..marked.IndexOf(" as uid ", StringComparison.Ordinal)];
        var victimUid = marked[(marked.IndexOf(" as uid ", StringComparison.Ordinal) + " as uid ".Length)..];
        var source = Directory.GetDirectories(Path.Combine(harness.CacheDirectory, "releases", "sources")).Single();
        var entry = Directory.GetFiles(source, "*.dll").First();

        var attack = await harness.Agent.StartRunAsync("attacker", "attack", new JsonObject
        {
            ["read"] = string.Join('|', token, database, Path.Combine(victimScratch, "mark"), entry),
            ["write"] = string.Join('|', Path.Combine(harness.CacheDirectory, "evil"), Path.Combine(source, "evil.dll"), Path.Combine(_serverData, "evil"), "/tmp/own-tmp"),
            ["list"] = string.Join('|', harness.CacheDirectory, Path.Combine(harness.CacheDirectory, "scratch"), victimScratch, _serverData),
            ["signal"] = victim.CodeServerProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }, null, AgentHarness.Timeout());
        var events = await AgentHarness.CollectAsync(attack);
        var outcomes = events.Where(e => (string?)e["type"] == "log").Select(e => (string)e["message"]!).ToList();
        string Outcome(string what, string target) => outcomes.Single(o => o.StartsWith($"{what} {target}: ", StringComparison.Ordinal));

        ((string?)events.Last()["type"]).ShouldBe("run_succeeded");
        Outcome("read", token).ShouldContain("refused");
        Outcome("read", database).ShouldContain("refused");
        Outcome("read", Path.Combine(victimScratch, "mark")).ShouldContain("refused");
        Outcome("read", entry).ShouldContain("allowed", customMessage: "its own code is readable");
        Outcome("write", Path.Combine(harness.CacheDirectory, "evil")).ShouldContain("refused");
        Outcome("write", Path.Combine(source, "evil.dll")).ShouldContain("refused");
        Outcome("write", Path.Combine(_serverData, "evil")).ShouldContain("refused");
        Outcome("write", "/tmp/own-tmp").ShouldContain("allowed", customMessage: "its private /tmp is writable");
        // Of the cache it sees only the folders its sandbox was given: its release and scratch, not the blobs or others' scratch.
        Outcome("list", harness.CacheDirectory).ShouldBe($"list {harness.CacheDirectory}: allowed: releases,scratch");
        Outcome("list", Path.Combine(harness.CacheDirectory, "scratch")).ShouldNotContain(Path.GetFileName(victimScratch));
        Outcome("list", victimScratch).ShouldContain("refused");
        Outcome("list", _serverData).ShouldContain("refused");
        Outcome("signal", victim.CodeServerProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)).ShouldContain("refused");
        File.Exists(Path.Combine(harness.CacheDirectory, "evil")).ShouldBeFalse();
        File.Exists(Path.Combine(source, "evil.dll")).ShouldBeFalse();
        File.Exists(Path.Combine(_serverData, "evil")).ShouldBeFalse();
        File.Exists("/tmp/own-tmp").ShouldBeFalse("the job's /tmp is its own");

        var attackerUid = outcomes.First(o => o.StartsWith("uid ", StringComparison.Ordinal)).Split(' ', ';')[1];
        attackerUid.ShouldNotBe("0");
        attackerUid.ShouldNotBe(victimUid);
        var attackerScratch = outcomes.First(o => o.StartsWith("uid ", StringComparison.Ordinal)).Split("scratch ")[1];
        // The run's last event comes before its process has exited; the folder goes once it has.
        using (var deadline = new CancellationTokenSource(AgentHarness.Deadline))
        {
            while (Directory.Exists(attackerScratch) && !deadline.IsCancellationRequested)
            {
                await Task.Delay(20, CancellationToken.None);
            }
        }

        Directory.Exists(attackerScratch).ShouldBeFalse("a process's scratch folder is removed when it ends");
        Directory.Exists(victimScratch).ShouldBeTrue("the victim's run is still running");
        var after = harness.Agent.Describe("victim")!;
        after.Health.ShouldBe(VersionHealth.Healthy);
        after.CodeServerProcessId.ShouldBe(victim.CodeServerProcessId);
        mark.Completion.IsCompleted.ShouldBeFalse();
        await harness.Agent.CancelRunAsync(mark.RunId, AgentHarness.Timeout());
        ((string?)(await mark.Completion.WaitAsync(AgentHarness.Deadline))["type"]).ShouldBe("run_canceled");
    }

    [Fact]
    public async Task A_native_allocation_over_the_limit_ends_the_run_out_of_memory_and_the_location_stays_healthy()
    {
        await using var harness = Sandboxed();
        (await harness.ActivateAsync("greedy", releases.V1, new LocationSettings { MemoryLimit = MemoryLimit.Parse("200MiB") })).Succeeded.ShouldBeTrue();

        var hog = await harness.Agent.StartRunAsync("greedy", "native_hog", null, null, AgentHarness.Timeout());
        var end = await hog.Completion.WaitAsync(AgentHarness.Deadline);
        var report = await harness.WaitForReportAsync("greedy", AgentReportKind.OutOfMemory);

        ((string?)end["type"]).ShouldBe("run_failed");
        ((bool?)end["out_of_memory"]).ShouldBe(true);
        ((string)end["reason"]!).ShouldContain("200MiB");
        ((string)end["reason"]!).ShouldContain("native memory included");
        report.Message.ShouldContain("out of memory");
        harness.Agent.Describe("greedy")!.Health.ShouldBe(VersionHealth.Healthy);
        var next = await harness.Agent.StartRunAsync("greedy", "ok", null, null, AgentHarness.Timeout());
        ((string?)(await next.Completion.WaitAsync(AgentHarness.Deadline))["type"]).ShouldBe("run_succeeded");
    }

    [Fact]
    public async Task A_sandboxed_shared_run_host_is_named_and_its_death_reported_by_its_own_process_not_bubblewraps()
    {
        await using var harness = Sandboxed();
        (await harness.ActivateAsync("boxed", releases.V1, new LocationSettings { Runs = Skiff.Agent.Runs.RunHosting.Shared })).Succeeded.ShouldBeTrue();
        var run = await harness.Agent.StartRunAsync("boxed", "slow", null, null, AgentHarness.Timeout());

        // The pids the agent gives are of the processes that serve, as ps shows them: grandchildren of bubblewrap's.
        var host = harness.Agent.SharedRunHostProcessIds.ShouldHaveSingleItem();
        var codeServer = harness.Agent.Describe("boxed")!.CodeServerProcessId;
        HostProcesses.Name(host).ShouldBe("runs:boxed");
        HostProcesses.Name(codeServer).ShouldBe("cs:boxed");
        var bwrap = HostProcesses.Parent(HostProcesses.Parent(host));
        HostProcesses.Name(bwrap).ShouldBe("bwrap");
        HostProcesses.Parent(bwrap).ShouldBe(Environment.ProcessId, "the agent started bubblewrap, which started the host");

        System.Diagnostics.Process.GetProcessById(host).Kill();
        var end = await run.Completion.WaitAsync(AgentHarness.Deadline);
        var report = await harness.WaitForReportAsync("boxed", AgentReportKind.RunHostDied);

        ((string?)end["type"]).ShouldBe("run_failed");
        ((string)end["reason"]!).ShouldContain("the shared run host died");
        report.Message.ShouldStartWith($"the shared run host (pid {host}, sandboxed by bwrap pid {bwrap}) ");
        harness.Agent.Describe("boxed")!.CodeServerProcessId.ShouldBe(codeServer, "the code server is untouched");
    }

    [Fact]
    public async Task A_fork_bomb_is_stopped_by_the_locations_process_limit()
    {
        await using var harness = Sandboxed();
        (await harness.ActivateAsync("bomber", releases.V1)).Succeeded.ShouldBeTrue();

        var bomb = await harness.Agent.StartRunAsync("bomber", "forkbomb", null, null, AgentHarness.Timeout());
        var events = await AgentHarness.CollectAsync(bomb);

        ((string?)events.Last()["type"]).ShouldBe("run_succeeded", string.Join('\n', events.Select(e => e.ToJsonString())));
        var stopped = events.Select(e => (string?)e["message"]).OfType<string>().Single(m => m.StartsWith("forks stopped after ", StringComparison.Ordinal));
        var forks = int.Parse(stopped.Split(' ')[3], System.Globalization.CultureInfo.InvariantCulture);
        forks.ShouldBeGreaterThan(0);
        forks.ShouldBeLessThan(harness.Options.LocationProcesses);
        harness.Agent.Describe("bomber")!.Health.ShouldBe(VersionHealth.Healthy);
        var next = await harness.Agent.StartRunAsync("bomber", "ok", null, null, AgentHarness.Timeout());
        ((string?)(await next.Completion.WaitAsync(AgentHarness.Deadline))["type"]).ShouldBe("run_succeeded");
    }

    [Fact]
    public async Task A_cpu_bound_job_gets_no_more_than_its_quota_while_one_without_a_quota_spins_beside_it()
    {
        const double Quota = 0.1;
        await using var limited = Sandboxed(cpus: Quota);
        await using var unlimited = Sandboxed();
        (await limited.ActivateAsync("capped", releases.V1)).Succeeded.ShouldBeTrue();
        (await unlimited.ActivateAsync("free", releases.V1)).Succeeded.ShouldBeTrue();

        // Side by side, so whatever else the machine does weighs on both alike.
        var spins = await Task.WhenAll(
            SpinAsync(limited, "capped"),
            SpinAsync(unlimited, "free"));

        var (capped, free) = (spins[0], spins[1]);
        var cappedThrottling = limited.Agent.Cgroups!.CpuThrottling("capped");
        var freeThrottling = unlimited.Agent.Cgroups!.CpuThrottling("free");
        var figures = $"capped: {capped:0.00} CPUs, throttled in {cappedThrottling.Throttled} of {cappedThrottling.Periods} periods; " +
            $"free: {free:0.00} CPUs, throttled in {freeThrottling.Throttled} of {freeThrottling.Periods} (quota {Quota}, {Environment.ProcessorCount} CPUs here)";
        Console.WriteLine("cpu quota: " + figures);
        // The kernel enforces a quota per 100 ms period; over 1.5 s the run may overshoot by a period or so.
        capped.ShouldBeLessThanOrEqualTo(Quota * 1.4, figures);
        capped.ShouldBeGreaterThan(Quota / 4, "the capped job did get CPU: " + figures);
        // What the free job gets depends on what else the machine runs; that the kernel held back the capped one,
        // and never the free one, does not.
        cappedThrottling.Throttled.ShouldBeGreaterThan(0, "the kernel throttled the capped location: " + figures);
        freeThrottling.Throttled.ShouldBe(0, "nothing throttled the location without a quota: " + figures);
    }

    public void Dispose() => Directory.Delete(_serverData, recursive: true);

    /// <summary>Runs the spin job and answers the CPUs it was given: its CPU time over its wall time.</summary>
    private static async Task<double> SpinAsync(AgentHarness harness, string location)
    {
        var spin = await harness.Agent.StartRunAsync(location, "spin", null, null, AgentHarness.Timeout());
        var spun = await NextLogAsync(spin, "spun ");
        ((string?)(await spin.Completion.WaitAsync(AgentHarness.Deadline))["type"]).ShouldBe("run_succeeded");
        var words = spun.Split(' ');
        return double.Parse(words[1], System.Globalization.CultureInfo.InvariantCulture) / double.Parse(words[6], System.Globalization.CultureInfo.InvariantCulture);
    }

    private AgentHarness Sandboxed(double? cpus = null) => new(releases, options => new AgentOptions
    {
        CacheDirectory = options.CacheDirectory,
        RestartBackoff = options.RestartBackoff,
        ActivationTimeout = options.ActivationTimeout,
        Sandbox = true,
        LocationProcesses = 200,
        LocationCpus = cpus,
    });

    private static async Task<string> NextLogAsync(RunHandle run, string prefix)
    {
        await foreach (var e in run.Events.ReadAllAsync(AgentHarness.Timeout()))
        {
            if (e.Type == "log" && (string?)e.ToJsonObject()["message"] is { } message && message.StartsWith(prefix, StringComparison.Ordinal))
            {
                return message;
            }
        }

        throw new InvalidOperationException($"the run ended without logging '{prefix}…'");
    }
}
