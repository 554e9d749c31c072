using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// A deployed run's op calls a task on another location (docs/tasks.md, "Deployed runs"): the call goes through the agent
/// and the server to the pool's queue, the pool's code server runs it, and the result and the task's events come back to
/// the calling run. Calls no pool can serve are refused at once, saying what to do.
/// </summary>
public sealed class TaskCallTests(PlatformFixture fixture, ITestOutputHelper output) : IClassFixture<PlatformFixture>
{
    internal const string Tasks = """
            jobs.Task("double", (TaskContext context, int n) =>
            {
                context.Logger.LogInformation("doubling {N} on attempt {Attempt} as {TaskId}", n, context.Attempt, context.TaskId);
                return n < 0 ? throw new ArgumentOutOfRangeException(nameof(n), n, "no negative numbers") : Task.FromResult(n * 2);
            }, retry: new RetryPolicy(2, TimeSpan.FromMilliseconds(10)), description: "Doubles a number");

            // Takes its code server down the first time it runs for a call; the delivery after that finds the mark and returns.
            jobs.Task("crash_once", (TaskContext context, string folder) =>
            {
                var mark = Path.Combine(folder, context.TaskId.Replace(':', '_'));
                if (!File.Exists(mark))
                {
                    File.WriteAllText(mark, "crashed once");
                    Environment.Exit(9);
                }

                return Task.FromResult("ran again after the crash");
            });

            jobs.Job("call_crash_once", "Calls crash_once")
                .Parameter("folder", "")
                .Run(async context => context.Logger.LogInformation("result {Result}", await context.CallAsync<string, string>("tasks", "crash_once", context.Parameters.Get<string>("folder"))));

            // Marks that it started, then waits to be canceled, and marks that too.
            jobs.Task("wait_for_cancel", async (TaskContext context, string folder) =>
            {
                File.WriteAllText(Path.Combine(folder, "started"), context.TaskId);
                try
                {
                    await Task.Delay(Timeout.Infinite, context.CancellationToken);
                }
                catch (OperationCanceledException)
                {
                    File.WriteAllText(Path.Combine(folder, "canceled"), context.TaskId);
                    throw;
                }

                return "never";
            });

            jobs.Job("call_wait", "Calls wait_for_cancel")
                .Parameter("folder", "")
                .Run(context => context.CallAsync<string, string>("tasks", "wait_for_cancel", context.Parameters.Get<string>("folder")));

            // Logs, reports progress and writes to stdout, then 50 lines 20 ms apart, then waits for the test to let it end:
            // the test looks for these in the calling run's events while the task still runs.
            jobs.Task("chatty", async (TaskContext context, string folder) =>
            {
                context.Logger.LogInformation("first line of {TaskId}", context.TaskId);
                context.ReportProgress(0.5, "halfway");
                Console.WriteLine("chatty on stdout");
                for (var i = 0; i < 50; i++)
                {
                    context.Logger.LogInformation("line {I}", i);
                    await Task.Delay(20, context.CancellationToken);
                }

                while (!File.Exists(Path.Combine(folder, "go")))
                {
                    await Task.Delay(20, context.CancellationToken);
                }

                return "let go";
            });

            jobs.Job("call_chatty", "Calls chatty")
                .Parameter("folder", "")
                .Run(async context => context.Logger.LogInformation("result {Result}", await context.CallAsync<string, string>("tasks", "chatty", context.Parameters.Get<string>("folder"))));

            // Marks that it started, then runs until the test lets it end.
            jobs.Task("hold", async (TaskContext context, string folder) =>
            {
                File.WriteAllText(Path.Combine(folder, "started"), context.TaskId);
                while (!File.Exists(Path.Combine(folder, "go")))
                {
                    await Task.Delay(20, context.CancellationToken);
                }

                return "held";
            });

            jobs.Job("call_hold", "Calls hold")
                .Parameter("pool", "tasks")
                .Parameter("folder", "")
                .Run(async context => context.Logger.LogInformation("result {Result}", await context.CallAsync<string, string>(context.Parameters.Get<string>("pool"), "hold", context.Parameters.Get<string>("folder"))));

            jobs.Job("call", "Calls a task and logs its result")
                .Parameter("pool", "tasks")
                .Parameter("task", "double")
                .Parameter("n", 21)
                .Run(async context => context.Logger.LogInformation("result {Result}", await context.CallAsync<int, int>(
                    context.Parameters.Get<string>("pool"), context.Parameters.Get<string>("task"), context.Parameters.Get<int>("n"))));

            // A small ETL as a DAG
        """;

    [Fact]
    public async Task A_run_calls_a_task_of_another_location_and_gets_its_result_and_its_events()
    {
        await DeployAsync();

        var run = await fixture.Platform.SkiffAsync("run", "caller", "call", "--param", "n=21");

        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("result 42", Case.Sensitive, run.ToString());
        var (runId, events) = await LastRunEventsAsync();
        var task = events.Where(e => e["task"] is not null).ToList();
        task.Select(e => (string?)e["type"]).ShouldBe(["task_started", "log", "task_succeeded"], run.ToString());
        task.ShouldAllBe(e => (string?)e["pool"] == "tasks" && (string?)e["task"] == "double" && (string?)e["op"] == "call"
            && (string?)e["task_id"] == $"{runId}:call:1");
        ((string?)task[1]["message"]).ShouldBe($"doubling 21 on attempt 1 as {runId}:call:1");
        // In the run's own numbering, between its op's start and end.
        var seqs = events.Select(e => (long)e["seq"]!).ToList();
        seqs.ShouldBe([.. Enumerable.Range(1, seqs.Count).Select(i => (long)i)]);
        events.FindIndex(e => (string?)e["type"] == "task_started").ShouldBeGreaterThan(events.FindIndex(e => (string?)e["type"] == "op_started"));
        events.FindIndex(e => (string?)e["type"] == "task_succeeded").ShouldBeLessThan(events.FindIndex(e => (string?)e["type"] == "op_succeeded"));
        // What a pool scales on: the pool has its two series on /metrics.
        using var http = new HttpClient { BaseAddress = fixture.Platform.Url };
        http.DefaultRequestHeaders.Authorization = new("Bearer", fixture.Platform.Token);
        var metrics = await http.GetStringAsync("metrics");
        metrics.ShouldMatch("""(?m)^skiff_pool_tasks_ready\{pool="tasks"\} \d+$""");
        metrics.ShouldMatch("""(?m)^skiff_pool_tasks_in_flight\{pool="tasks"\} \d+$""");
    }

    [Fact]
    public async Task A_task_that_fails_on_every_attempt_fails_the_calling_op_with_its_error_and_its_retries_in_the_events()
    {
        await DeployAsync();

        var run = await fixture.Platform.SkiffAsync("run", "caller", "call", "--param", "n=-1");

        run.ExitCode.ShouldNotBe(0, run.ToString());
        var (runId, events) = await LastRunEventsAsync();
        events.Where(e => e["task"] is not null).Select(e => (string?)e["type"]).ShouldBe(["task_started", "log", "task_retrying", "task_started", "log", "task_failed"], run.ToString());
        var failed = events.Single(e => (string?)e["type"] == "op_failed");
        ((string?)failed["error"]!["type"]).ShouldBe("Skiff.Sdk.TaskCallException");
        ((string?)failed["error"]!["message"]).ShouldStartWith("task 'double' of pool 'tasks' failed on all 2 attempts: System.ArgumentOutOfRangeException: no negative numbers");
        ((string?)events.Last()["type"]).ShouldBe("run_failed", runId);
    }

    [Fact]
    public async Task A_task_whose_worker_dies_while_it_runs_is_delivered_again_and_the_caller_gets_the_second_result()
    {
        await DeployAsync();
        var folder = fixture.Workspace.PathTo("crash-marks");
        Directory.CreateDirectory(folder);

        var run = await fixture.Platform.SkiffAsync("run", "caller", "call_crash_once", "--param", $"folder={folder}");

        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("result ran again after the crash", Case.Sensitive, run.ToString());
        Directory.GetFiles(folder).Length.ShouldBe(1);
        var (_, events) = await LastRunEventsAsync();
        // The second delivery's start and end; before them the first delivery's start, when it reached the caller live
        // before the crash (it stays, marked as delivery 1).
        var task = events.Where(e => e["task"] is not null).Select(e => ((string?)e["type"], (int?)e["delivery"])).ToList();
        task.TakeLast(2).ShouldBe([("task_started", 2), ("task_succeeded", 2)], run.ToString());
        task.SkipLast(2).ShouldAllBe(e => e.Item1 == "task_started" && e.Item2 == 1, run.ToString());
        // The calling run is told why: the first delivery failed when its code server died under it (the agent said so).
        var redelivered = events.Single(e => (string?)e["type"] == "task_started" && (int?)e["delivery"] == 2);
        const string Reason = "the previous delivery failed: agent 'test-agent' did not run it: ";
        ((string?)redelivered["redelivery_reason"]).ShouldStartWith(Reason, customMessage: run.ToString());
        events.Where(e => (int?)e["delivery"] == 1).ShouldAllBe(e => e["redelivery_reason"] == null);
        run.Stdout.ShouldContain($", delivery 2: {Reason}", Case.Sensitive, run.ToString());
    }

    [Fact]
    public async Task Canceling_the_calling_run_stops_its_wait_and_cancels_the_task_on_the_pool()
    {
        await DeployAsync();
        var folder = fixture.Workspace.PathTo("cancel-marks");
        Directory.CreateDirectory(folder);

        var started = await fixture.Platform.SkiffAsync("run", "caller", "call_wait", "--param", $"folder={folder}", "--detach", "--json");
        started.ExitCode.ShouldBe(0, started.ToString());
        var runId = (string)JsonNode.Parse(started.Stdout)!["run"]!;
        await WaitForFileAsync(Path.Combine(folder, "started"));
        var canceled = await fixture.Platform.SkiffAsync("cancel", runId);
        var logs = await fixture.Platform.SkiffAsync("logs", runId, "--follow", "--json");
        await WaitForFileAsync(Path.Combine(folder, "canceled"));

        canceled.ExitCode.ShouldBe(0, canceled.ToString());
        var events = logs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!).ToList();
        ((string?)events.Last()["type"]).ShouldBe("run_canceled", logs.ToString());
        events.ShouldContain(e => (string?)e["type"] == "task_canceled" && (string?)e["task"] == "wait_for_cancel", logs.ToString());
        (await File.ReadAllTextAsync(Path.Combine(folder, "canceled"))).ShouldBe($"{runId}:call_wait:1");
    }

    [Fact]
    public async Task A_tasks_logs_progress_and_output_reach_the_calling_run_while_it_runs_attributed_to_its_worker()
    {
        await DeployAsync();
        var folder = fixture.Workspace.PathTo("chatty-gate");
        Directory.CreateDirectory(folder);
        var started = await fixture.Platform.SkiffAsync("run", "caller", "call_chatty", "--param", $"folder={folder}", "--detach", "--json");
        started.ExitCode.ShouldBe(0, started.ToString());
        var runId = (string)JsonNode.Parse(started.Stdout)!["run"]!;

        // Follows the calling run's stored events; the task waits for "go", which is written only once they show its lines.
        using var http = fixture.Platform.Http();
        using var deadline = new CancellationTokenSource(EmbeddedPlatform.ActivationDeadline);
        using var response = await http.GetAsync($"api/v1/runs/{runId}/events?follow=true", HttpCompletionOption.ResponseHeadersRead, deadline.Token);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(deadline.Token));
        var events = new List<(JsonNode Event, DateTimeOffset Arrived)>();
        async Task ReadUntilAsync(Func<JsonNode, bool> condition)
        {
            while (await reader.ReadLineAsync(deadline.Token) is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }

                var read = JsonNode.Parse(line)!;
                events.Add((read, DateTimeOffset.UtcNow));
                if (condition(read))
                {
                    return;
                }
            }

            throw new ShouldAssertException($"the run's events ended before the one looked for: {string.Join('\n', events.Select(e => e.Event.ToJsonString()))}");
        }

        await ReadUntilAsync(e => (string?)e["message"] == $"first line of {runId}:call_chatty:1");
        await ReadUntilAsync(e => (string?)e["message"] == "line 49");
        // Seen while the task still waits for the test: live, not with its result.
        events.ShouldNotContain(e => (string?)e.Event["type"] == "task_succeeded");
        await File.WriteAllTextAsync(Path.Combine(folder, "go"), "go", deadline.Token);
        await ReadUntilAsync(e => (string?)e["type"] is "run_succeeded" or "run_failed" or "run_canceled");

        ((string?)events[^1].Event["type"]).ShouldBe("run_succeeded", string.Join('\n', events.Select(e => e.Event.ToJsonString())));
        var release = (string?)events.Single(e => (string?)e.Event["type"] == "run_started").Event["release"];
        var task = events.Select(e => e.Event).Where(e => e["task"] is not null).ToList();
        task.Select(e => (string?)e["type"]).Distinct().ShouldBe(["task_started", "log", "progress", "output", "task_succeeded"], ignoreOrder: true);
        // The same program is the pool and the caller, so the pool's release is the run's.
        task.ShouldAllBe(e => (string?)e["op"] == "call_chatty" && (string?)e["pool"] == "tasks" && (string?)e["task"] == "chatty"
            && (string?)e["worker"] == "test-agent" && (string?)e["release"] == release && (int?)e["delivery"] == 1);
        // Each once: what came live is not emitted again with the result.
        task.Count(e => (string?)e["type"] == "log").ShouldBe(51);
        task.Where(e => (string?)e["type"] == "log").Select(e => (string?)e["message"]).Distinct().Count().ShouldBe(51);
        ((string?)task.Single(e => (string?)e["type"] == "output")["text"]).ShouldBe("chatty on stdout");
        var seqs = events.Select(e => (long)e.Event["seq"]!).ToList();
        seqs.ShouldBe([.. Enumerable.Range(1, seqs.Count).Select(i => (long)i)]);

        // The figure for docs/tasks.md: from a line's time on the worker to its arrival at a follower of the calling run.
        var delays = events.Where(e => ((string?)e.Event["message"])?.StartsWith("line ", StringComparison.Ordinal) == true)
            .Select(e => (e.Arrived - (DateTimeOffset)e.Event["ts"]!).TotalMilliseconds).Order().ToList();
        output.WriteLine($"live task log line, worker -> calling run's follower: median {delays[delays.Count / 2]:0.0} ms, max {delays[^1]:0.0} ms over {delays.Count} lines");

        var logs = await fixture.Platform.SkiffAsync("logs", runId);
        logs.ExitCode.ShouldBe(0, logs.ToString());
        logs.Stdout.ShouldContain($"call_chatty > tasks/chatty started (task {runId}:call_chatty:1) [pool tasks @ agent test-agent, release {release![7..19]}]", Case.Sensitive, logs.ToString());
        logs.Stdout.ShouldContain($"call_chatty > tasks/chatty info  first line of {runId}:call_chatty:1", Case.Sensitive, logs.ToString());
        logs.Stdout.ShouldContain("call_chatty > tasks/chatty  50%  halfway", Case.Sensitive, logs.ToString());
    }

    [Fact]
    public async Task A_replaced_pool_release_finishes_its_task_and_serves_calls_pinned_to_it_until_it_drains_then_stops()
    {
        await DeployAsync();
        var project = PlatformFixture.SharedVariant("tasks", text => text.Replace("    // A small ETL as a DAG", Tasks, StringComparison.Ordinal));
        var replacement = PlatformFixture.SharedVariant("tasks-howdy", text => text
            .Replace("Hello, {Name}!", "Howdy, {Name}!", StringComparison.Ordinal)
            .Replace("    // A small ETL as a DAG", Tasks, StringComparison.Ordinal));
        var first = await DeployReleaseAsync(project, "drain");
        var pin = first[7..19];
        var folder = fixture.Workspace.PathTo("drain-gate");
        Directory.CreateDirectory(folder);

        // A task runs on the first release, and a call pinned to it waits behind it (the pool's worker takes one at a time).
        var holding = await StartAsync("call_hold", "pool=drain", $"folder={folder}");
        await WaitForFileAsync(Path.Combine(folder, "started"));
        var pinnedBefore = await StartAsync("call", $"pool=drain@{pin}", "n=4");
        var second = await DeployReleaseAsync(replacement, "drain");
        second.ShouldNotBe(first);
        await TaskFlowTests.WaitUntilAsync(async () => (await HealthAsync("drain")).Any(r => (string?)r["kind"] == "draining" && (string?)r["release"] == first), "the replaced release to be reported draining");
        // While it drains, a call pinned to it is taken; an unpinned call goes to the new release.
        var pinnedAfter = await StartAsync("call", $"pool=drain@{pin}", "n=5");
        var unpinned = await StartAsync("call", "pool=drain", "n=6");
        // A pinned call is checked against what the release it goes to declares: here the draining one.
        var undeclared = await fixture.Platform.SkiffAsync("run", "caller", "call", "--param", $"pool=drain@{pin}", "--param", "task=triple");
        undeclared.ExitCode.ShouldNotBe(0, undeclared.ToString());
        var (_, refusedUndeclared) = await LastRunEventsAsync();
        ((string?)refusedUndeclared.Single(e => (string?)e["type"] == "op_failed")["error"]!["message"] ?? "")
            .ShouldContain($"pool 'drain' declares no task 'triple' in its draining release {pin};", Case.Sensitive);
        await File.WriteAllTextAsync(Path.Combine(folder, "go"), "go");

        // The task in flight was not cut off and run again: one delivery, on the release it started on.
        var held = await FollowAsync(holding);
        held.Select(e => ((string?)e["type"], (int?)e["delivery"], (string?)e["release"])).Where(e => e.Item1 == "task_started")
            .ShouldBe([("task_started", 1, first)], Show(held));
        foreach (var (run, release, result) in new[] { (pinnedBefore, first, "result 8"), (pinnedAfter, first, "result 10"), (unpinned, second, "result 12") })
        {
            var events = await FollowAsync(run);
            ((string?)events[^1]["type"]).ShouldBe("run_succeeded", Show(events));
            events.ShouldContain(e => (string?)e["message"] == result, Show(events));
            events.Where(e => e["task"] is not null).ShouldAllBe(e => (string?)e["release"] == release, Show(events));
        }

        // Once no task has run on it for the agent's drain period, it stops, and a call pinned to it is refused at once.
        await TaskFlowTests.WaitUntilAsync(async () => (await HealthAsync("drain")).FirstOrDefault(r => (string?)r["release"] == first) is { } newest
            && (string?)newest["kind"] == "stopped" && ((string?)newest["message"] ?? "").StartsWith("drained: no task ran on it for", StringComparison.Ordinal), "the replaced release to stop, drained");
        var refused = await fixture.Platform.SkiffAsync("run", "caller", "call", "--param", $"pool=drain@{pin}");
        refused.ExitCode.ShouldNotBe(0, refused.ToString());
        var (_, last) = await LastRunEventsAsync();
        ((string?)last.Single(e => (string?)e["type"] == "op_failed")["error"]!["message"] ?? "")
            .ShouldContain($"'drain@{pin}' pins a release that pool 'drain' does not run: its live release is {second[7..19]}, and no replaced release starting with {pin} is draining", Case.Sensitive);
    }

    private async Task<string> DeployReleaseAsync(string project, string location)
    {
        var deployed = await fixture.Platform.SkiffAsync("deploy", project, "--location", location, "--json");
        deployed.ExitCode.ShouldBe(0, deployed.ToString());
        return (string)JsonNode.Parse(deployed.Stdout)!["release"]!;
    }

    /// <summary>Starts a run of the caller's <paramref name="job"/> without waiting for it; returns its id.</summary>
    private async Task<string> StartAsync(string job, params string[] parameters)
    {
        var started = await fixture.Platform.SkiffAsync(["run", "caller", job, .. parameters.SelectMany(p => (string[])["--param", p]), "--detach", "--json"]);
        started.ExitCode.ShouldBe(0, started.ToString());
        return (string)JsonNode.Parse(started.Stdout)!["run"]!;
    }

    /// <summary>A run's events, once it has ended.</summary>
    private async Task<List<JsonNode>> FollowAsync(string runId)
    {
        var logs = await fixture.Platform.SkiffAsync("logs", runId, "--follow", "--json");
        return [.. logs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!)];
    }

    private async Task<List<JsonNode>> HealthAsync(string location) =>
        [.. JsonNode.Parse((await fixture.Platform.SkiffAsync("health", location, "--json")).Stdout)!.AsArray().OfType<JsonNode>()];

    private static string Show(IEnumerable<JsonNode> events) => string.Join('\n', events.Select(e => e.ToJsonString()));

    /// <summary>Waits for a file to appear, for up to the activation deadline (against a hang).</summary>
    private static async Task WaitForFileAsync(string path)
    {
        using var watcher = new FileSystemWatcher(Path.GetDirectoryName(path)!, Path.GetFileName(path)) { EnableRaisingEvents = true };
        var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.Created += (_, _) => created.TrySetResult();
        watcher.Changed += (_, _) => created.TrySetResult();
        if (!File.Exists(path))
        {
            await created.Task.WaitAsync(EmbeddedPlatform.ActivationDeadline);
        }
    }

    [Theory]
    [InlineData("pool=nowhere", "no location 'nowhere' has a live release, so nothing serves task 'double'. Deploy the pool's project there")]
    [InlineData("task=triple", "pool 'tasks' declares no task 'triple' in its live release")]
    [InlineData("pool=tasks@000000", "'tasks@000000' pins a release that pool 'tasks' does not run: its live release is")]
    public async Task A_call_no_pool_can_serve_is_refused_saying_what_to_do_and_nothing_runs(string parameter, string expected)
    {
        await DeployAsync();

        var run = await fixture.Platform.SkiffAsync("run", "caller", "call", "--param", parameter);

        run.ExitCode.ShouldNotBe(0, run.ToString());
        var (_, events) = await LastRunEventsAsync();
        events.ShouldNotContain(e => e["task"] != null, run.ToString());
        var failed = events.Single(e => (string?)e["type"] == "op_failed");
        ((string?)failed["error"]!["type"]).ShouldBe("Skiff.Sdk.TaskCallException");
        ((string?)failed["error"]!["message"] ?? "").ShouldContain("the call was refused and nothing was queued: " + expected, Case.Sensitive);
    }

    /// <summary>The same program deployed as the pool ("tasks") and as the caller ("caller"); a second deploy changes nothing.</summary>
    private async Task DeployAsync()
    {
        var project = PlatformFixture.SharedVariant("tasks", text => text.Replace("    // A small ETL as a DAG", Tasks, StringComparison.Ordinal));
        foreach (var location in (string[])["tasks", "caller"])
        {
            var deployed = await fixture.Platform.SkiffAsync("deploy", project, "--location", location);
            deployed.ExitCode.ShouldBe(0, deployed.ToString());
            // A pool's deploy names the tasks it serves beside its jobs.
            deployed.Stdout.ShouldContain("; tasks: double, crash_once, wait_for_cancel, chatty, hold", Case.Sensitive, deployed.ToString());
        }
    }

    /// <summary>The events of the caller's latest run, as stored.</summary>
    private async Task<(string Run, List<JsonNode> Events)> LastRunEventsAsync()
    {
        var runs = JsonNode.Parse((await fixture.Platform.SkiffAsync("runs", "caller", "--json")).Stdout)!.AsArray();
        var runId = (string)runs[0]!["run"]!;
        var logs = await fixture.Platform.SkiffAsync("logs", runId, "--json");
        return (runId, [.. logs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!)]);
    }
}
