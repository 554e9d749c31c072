using System.Diagnostics;
using System.Text.Json.Nodes;
using Skiff.Agent.CodeServers;
using Skiff.Agent.Locations;
using Skiff.Agent.Runs;
using Skiff.Sdk.Protocol;

namespace Skiff.Agent.Tests.Runs;

/// <summary>A location whose runs are shared: every run of a release in one process, the release's shared run host.</summary>
[Collection(AgentCollection.Name)]
public sealed class SharedRunHostTests(Releases releases)
{
    private static readonly LocationSettings Shared = new() { Runs = RunHosting.Shared };

    [Fact]
    public async Task Two_hundred_concurrent_runs_share_one_host_process_and_each_gets_its_own_result()
    {
        const int Runs = 200;
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1, Shared)).Succeeded.ShouldBeTrue();
        var go = Path.Combine(releases.Scratch, Guid.NewGuid().ToString("N"));

        var runs = new List<RunHandle>();
        for (var n = 0; n < Runs; n++)
        {
            runs.Add(await harness.Agent.StartRunAsync("analytics", "twice", new JsonObject { ["n"] = n, ["file"] = go }, $"shared-{n:D3}", AgentHarness.Timeout()));
        }

        // All of them are waiting (none can end before the file exists), in one process that is not the code server.
        var hosts = harness.Agent.SharedRunHostProcessIds;
        var waiting = harness.Agent.RunningRuns;
        await File.WriteAllTextAsync(go, "go");
        var ends = await Task.WhenAll(runs.Select(AgentHarness.CollectAsync));

        waiting.ShouldBe(Runs);
        hosts.Count.ShouldBe(1);
        hosts[0].ShouldNotBe(harness.Agent.Describe("analytics")!.CodeServerProcessId);
        for (var n = 0; n < Runs; n++)
        {
            ((string?)ends[n].Last()["type"]).ShouldBe("run_succeeded", $"run {n}: {ends[n].Last().ToJsonString()}");
            ends[n].ShouldContain(e => (string?)e["message"] == $"twice {n} is {n * 2} in {hosts[0]}", $"run {n}'s own result, from the shared host");
        }
    }

    [Fact]
    public async Task The_shared_run_host_code_server_and_run_processes_are_named_for_ps_by_role_and_location()
    {
        await using var harness = new AgentHarness(releases);
        // Long enough to be cut to the kernel's 15 bytes.
        (await harness.ActivateAsync("analytics-nightly", releases.V1, Shared)).Succeeded.ShouldBeTrue();
        await harness.Agent.StandbysStartedAsync();
        var taken = harness.Agent.StandbysTaken;
        var go = Path.Combine(releases.Scratch, Guid.NewGuid().ToString("N"));
        var shared = await harness.Agent.StartRunAsync("analytics-nightly", "twice", new JsonObject { ["n"] = 1, ["file"] = go }, null, AgentHarness.Timeout());
        var host = harness.Agent.SharedRunHostProcessIds.ShouldHaveSingleItem();
        // A process whose command line was that of a standby (Skiff.Sdk.Tests' ProcessNameTests check the name is the
        // process's when Main does not run on the main thread, as a standby's may not).
        harness.Agent.StandbysTaken.ShouldBe(taken + 1, "the host is a standby that was waiting");
        (await harness.ActivateAsync("ps-isolated", releases.V1)).Succeeded.ShouldBeTrue();
        var isolated = await harness.Agent.StartRunAsync("ps-isolated", "twice", new JsonObject { ["n"] = 2, ["file"] = go }, null, AgentHarness.Timeout());

        HostProcesses.Name(host).ShouldBe("runs:analytics-");
        HostProcesses.Name(harness.Agent.Describe("analytics-nightly")!.CodeServerProcessId).ShouldBe("cs:analytics-ni");
        HostProcesses.Name(harness.Agent.Describe("ps-isolated")!.CodeServerProcessId).ShouldBe("cs:ps-isolated");
        HostProcesses.Parent(HostProcesses.Named("run:ps-isolated").ShouldHaveSingleItem()).ShouldBe(Environment.ProcessId, "the run's own process, a child of the agent");
        await File.WriteAllTextAsync(go, "go");
        foreach (var run in new[] { shared, isolated })
        {
            ((string?)(await run.Completion.WaitAsync(AgentHarness.Deadline))["type"]).ShouldBe("run_succeeded");
        }
    }

    [Fact]
    public async Task Runs_of_a_location_are_isolated_unless_it_says_shared()
    {
        LocationSettings.Default.Runs.ShouldBe(RunHosting.Isolated);
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();

        var first = await AgentHarness.CollectAsync(await harness.Agent.StartRunAsync("analytics", "twice", new JsonObject { ["n"] = 1 }, null, AgentHarness.Timeout()));
        var second = await AgentHarness.CollectAsync(await harness.Agent.StartRunAsync("analytics", "twice", new JsonObject { ["n"] = 2 }, null, AgentHarness.Timeout()));

        harness.Agent.SharedRunHostProcessIds.ShouldBeEmpty();
        var pids = new[] { first, second }.Select(events => ((string)events.Single(e => ((string?)e["message"])?.StartsWith("twice", StringComparison.Ordinal) == true)["message"]!).Split(' ').Last()).ToList();
        pids.Distinct().Count().ShouldBe(2, "a process of its own per run");
    }

    [Fact]
    public async Task Canceling_one_waiting_run_cancels_it_and_its_task_call_and_leaves_the_others_running()
    {
        await using var harness = new AgentHarness(releases);
        var calls = new System.Collections.Concurrent.ConcurrentDictionary<string, (CallTaskMessage Call, TaskCompletionSource<TaskResultNotice> Result, TaskCompletionSource Canceled)>();
        var allCalling = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Agent.TaskCalls = async (call, _, cancellationToken) =>
        {
            var entry = calls.GetOrAdd(call.Run, _ => (call, new TaskCompletionSource<TaskResultNotice>(TaskCreationOptions.RunContinuationsAsynchronously), new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)));
            if (calls.Count == 3)
            {
                allCalling.TrySetResult();
            }

            try
            {
                return await entry.Result.Task.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                entry.Canceled.TrySetResult();
                throw;
            }
        };
        (await harness.ActivateAsync("analytics", releases.V1, Shared)).Succeeded.ShouldBeTrue();
        var runs = new List<RunHandle>();
        foreach (var id in new[] { "keep-1", "cancel-me", "keep-2" })
        {
            runs.Add(await harness.Agent.StartRunAsync("analytics", "calls_task", null, id, AgentHarness.Timeout()));
        }

        await allCalling.Task.WaitAsync(AgentHarness.Deadline);
        await harness.Agent.CancelRunAsync("cancel-me", AgentHarness.Timeout());
        var canceled = await AgentHarness.CollectAsync(runs[1]);
        await calls["cancel-me"].Canceled.Task.WaitAsync(AgentHarness.Deadline);

        ((string?)canceled.Last()["type"]).ShouldBe("run_canceled");
        canceled.ShouldContain(e => (string?)e["type"] == "task_canceled");
        runs[0].Completion.IsCompleted.ShouldBeFalse("the other runs in the host are untouched");
        runs[2].Completion.IsCompleted.ShouldBeFalse("the other runs in the host are untouched");
        calls["keep-1"].Canceled.Task.IsCompleted.ShouldBeFalse();
        foreach (var id in new[] { "keep-1", "keep-2" })
        {
            calls[id].Result.SetResult(new TaskResultNotice(calls[id].Call.Call, new TaskOutcome(true, JsonValue.Create(42))));
        }

        foreach (var run in new[] { runs[0], runs[2] })
        {
            var events = await AgentHarness.CollectAsync(run);
            ((string?)events.Last()["type"]).ShouldBe("run_succeeded");
            events.ShouldContain(e => (string?)e["message"] == "doubled: 42");
        }
    }

    [Fact]
    public async Task A_killed_host_fails_its_runs_with_the_reason_leaves_the_other_version_running_and_the_next_run_gets_a_new_host()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1, Shared)).Succeeded.ShouldBeTrue();
        var go = Path.Combine(releases.Scratch, Guid.NewGuid().ToString("N"));
        var onV1 = new List<RunHandle>();
        for (var n = 0; n < 3; n++)
        {
            onV1.Add(await harness.Agent.StartRunAsync("analytics", "twice", new JsonObject { ["n"] = n, ["file"] = go }, null, AgentHarness.Timeout()));
        }

        var v1Host = harness.Agent.SharedRunHostProcessIds.ShouldHaveSingleItem();
        (await harness.ActivateAsync("analytics", releases.V2, Shared)).Succeeded.ShouldBeTrue();
        var onV2 = await harness.Agent.StartRunAsync("analytics", "twice", new JsonObject { ["n"] = 7, ["file"] = go }, null, AgentHarness.Timeout());
        var codeServer = harness.Agent.Describe("analytics")!.CodeServerProcessId;

        Process.GetProcessById(v1Host).Kill();
        var ends = await Task.WhenAll(onV1.Select(r => r.Completion.WaitAsync(AgentHarness.Deadline)));
        var report = await harness.WaitForReportAsync("analytics", AgentReportKind.RunHostDied);

        foreach (var end in ends)
        {
            ((string?)end["type"]).ShouldBe("run_failed");
            ((string)end["reason"]!).ShouldContain("the shared run host died");
            ((string)end["reason"]!).ShouldContain("SIGKILL");
        }

        report.Release.ShouldBe(releases.V1);
        onV2.Completion.IsCompleted.ShouldBeFalse("the other version's host is untouched");
        harness.Agent.Describe("analytics")!.CodeServerProcessId.ShouldBe(codeServer, "the live code server is untouched");
        harness.Agent.Describe("analytics")!.Health.ShouldBe(VersionHealth.Healthy);
        await File.WriteAllTextAsync(go, "go");
        ((string?)(await onV2.Completion.WaitAsync(AgentHarness.Deadline))["type"]).ShouldBe("run_succeeded");
        var next = await AgentHarness.CollectAsync(await harness.Agent.StartRunAsync("analytics", "twice", new JsonObject { ["n"] = 8 }, null, AgentHarness.Timeout()));
        ((string?)next.Last()["type"]).ShouldBe("run_succeeded");
        next.ShouldContain(e => (string?)e["message"] == $"twice 8 is 16 in {harness.Agent.SharedRunHostProcessIds.ShouldHaveSingleItem()}");
    }

    [Fact]
    public async Task A_run_that_calls_FailFast_takes_the_host_and_its_runs_down_with_the_reason_and_the_next_run_gets_a_new_host()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1, Shared)).Succeeded.ShouldBeTrue();
        var waiting = await harness.Agent.StartRunAsync("analytics", "twice", new JsonObject { ["n"] = 1, ["file"] = Path.Combine(releases.Scratch, Guid.NewGuid().ToString("N")) }, null, AgentHarness.Timeout());
        var first = harness.Agent.SharedRunHostProcessIds.ShouldHaveSingleItem();

        var failfast = await harness.Agent.StartRunAsync("analytics", "failfast", null, null, AgentHarness.Timeout());
        var ends = await Task.WhenAll(waiting.Completion.WaitAsync(AgentHarness.Deadline), failfast.Completion.WaitAsync(AgentHarness.Deadline));

        foreach (var end in ends)
        {
            ((string?)end["type"]).ShouldBe("run_failed");
            ((string)end["reason"]!).ShouldContain("the shared run host died");
            ((string)end["reason"]!).ShouldContain("the failfast job called Environment.FailFast", customMessage: "the end of the host's stderr says why");
        }

        var next = await harness.Agent.StartRunAsync("analytics", "ok", null, null, AgentHarness.Timeout());
        ((string?)(await next.Completion.WaitAsync(AgentHarness.Deadline))["type"]).ShouldBe("run_succeeded");
        harness.Agent.SharedRunHostProcessIds.ShouldHaveSingleItem().ShouldNotBe(first);
    }

    [Fact]
    public async Task The_host_of_a_release_that_is_no_longer_live_exits_when_its_last_run_ends()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("analytics", releases.V1, Shared)).Succeeded.ShouldBeTrue();
        var go = Path.Combine(releases.Scratch, Guid.NewGuid().ToString("N"));
        var run = await harness.Agent.StartRunAsync("analytics", "twice", new JsonObject { ["n"] = 3, ["file"] = go }, null, AgentHarness.Timeout());
        var v1Host = Process.GetProcessById(harness.Agent.SharedRunHostProcessIds.ShouldHaveSingleItem());

        (await harness.ActivateAsync("analytics", releases.V2, Shared)).Succeeded.ShouldBeTrue();
        await harness.Agent.StandbysStartedAsync();
        v1Host.HasExited.ShouldBeFalse("its run is still running");
        await File.WriteAllTextAsync(go, "go");

        ((string?)(await run.Completion.WaitAsync(AgentHarness.Deadline))["type"]).ShouldBe("run_succeeded");
        await v1Host.WaitForExitAsync(AgentHarness.Timeout());
        harness.Agent.SharedRunHostProcessIds.ShouldNotContain(v1Host.Id);
    }
}
