using System.Text.Json.Nodes;
using Skiff.Core;

namespace Skiff.Cli.Tests.Platform;

/// <summary>`skiff deploy`, `run`, `history`, `rollback` as a user runs them against an embedded platform.</summary>
public sealed partial class DeployTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private EmbeddedPlatform Platform => fixture.Platform;

    [Fact]
    public async Task Full_then_unchanged_then_fast_uploading_only_what_changed()
    {
        // A platform of its own: "full" means the server has none of the packages yet.
        await using var platform = await EmbeddedPlatform.StartAsync(fixture.Workspace.PathTo("platform-sequence"));
        var project = fixture.Variant("sequence", text => text);

        var full = await DeployAsync(project, "sequence", platform: platform);
        var unchanged = await DeployAsync(project, "sequence", platform: platform);
        var program = Path.Combine(project, "Program.cs");
        File.WriteAllText(program, File.ReadAllText(program).Replace("\"Hello, {Name}!\"", "\"Hello again, {Name}!\"", StringComparison.Ordinal));
        var fast = await DeployAsync(project, "sequence", platform: platform);
        var run = await platform.SkiffAsync("run", "sequence", "hello", "--param", "name=fast path");

        ((string?)full["path"]).ShouldBe("full");
        ((int)full["uploaded"]!["blobs"]!).ShouldBeGreaterThan(5);
        ((string?)unchanged["path"]).ShouldBe("unchanged");
        ((long?)unchanged["uploaded"]!["bytes"]).ShouldBe(0);
        ((string?)unchanged["release"]).ShouldBe((string?)full["release"]);
        ((string?)fast["path"]).ShouldBe("fast");
        ((int?)fast["uploaded"]!["blobs"]).ShouldBe(2, "the source blob and the release manifest that names it");
        var local = new Skiff.Core.Blobs.FileBlobStore(Path.Combine(platform.Home, "store"));
        var release = Skiff.Core.Manifests.ReleaseManifest.FromBytes(
            await ReadAsync(local, Digest.Parse((string)fast["release"]!)), "release");
        var sourceBytes = await local.GetLengthAsync(release.Source, CancellationToken.None);
        var manifestBytes = await local.GetLengthAsync(Digest.Parse((string)fast["release"]!), CancellationToken.None);
        ((long?)fast["uploaded"]!["bytes"]).ShouldBe(sourceBytes + manifestBytes);
        foreach (var deployment in new[] { full, unchanged, fast })
        {
            ((string?)deployment["outcome"]).ShouldBe("live");
            deployment["jobs"]!.AsArray().Select(j => (string?)j).ShouldBe(["hello", "etl"]);
            var timings = deployment["timings_ms"]!;
            foreach (var stage in (string[])["restore", "pack", "upload", "activate"])
            {
                ((long?)timings[stage]).ShouldNotBeNull().ShouldBeGreaterThanOrEqualTo(0);
            }

            ((long)timings["build"]!).ShouldBeGreaterThan(0);
            ((long)timings["total"]!).ShouldBeGreaterThanOrEqualTo((long)timings["restore"]! + (long)timings["build"]! + (long)timings["pack"]! + (long)timings["upload"]!);
        }

        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("Hello again, fast path!");
        var history = JsonNode.Parse((await platform.SkiffAsync("history", "sequence", "--json")).Stdout)!.AsArray();
        history.Select(d => (string?)d!["path"]).ShouldBe(["fast", "unchanged", "full"]);
    }

    [Fact]
    public async Task Run_streams_events_and_its_exit_code_is_the_outcome()
    {
        await DeployAsync(fixture.Hello, "runs");

        var succeeded = await Platform.SkiffAsync("run", "runs", "hello", "--param", "name=stream");
        var failed = await Platform.SkiffAsync("run", "runs", "etl", "--param", "fail=clean");
        var unknownJob = await Platform.SkiffAsync("run", "runs", "no_such_job");
        var badParameter = await Platform.SkiffAsync("run", "runs", "etl", "--param", "rows=many");
        var unknownLocation = await Platform.SkiffAsync("run", "nowhere", "hello");
        var runs = JsonNode.Parse((await Platform.SkiffAsync("runs", "runs", "--json")).Stdout)!.AsArray();
        var logs = await Platform.SkiffAsync("logs", (string)runs.Last()!["run"]!);
        var jobs = await Platform.SkiffAsync("jobs", "runs");

        succeeded.ExitCode.ShouldBe(0, succeeded.ToString());
        succeeded.Stdout.ShouldContain("Hello, stream!");
        succeeded.Stdout.ShouldContain("run succeeded");
        failed.ExitCode.ShouldBe(1, failed.ToString());
        failed.Stdout.ShouldContain("load             skipped: dependency 'clean' failed");
        failed.Stdout.ShouldContain("run failed: op 'clean' failed");
        // Bad input exits 2 on the platform as it does when the job runs by hand.
        unknownJob.ExitCode.ShouldBe(2, unknownJob.ToString());
        unknownJob.Stderr.ShouldContain("location 'runs' has no job 'no_such_job'; its live release defines: ");
        unknownJob.Stderr.ShouldNotContain("run worker", customMessage: "no worker, and no run id nothing lists");
        badParameter.ExitCode.ShouldBe(2, badParameter.ToString());
        badParameter.Stderr.ShouldContain("parameter 'rows' must be an integer");
        unknownLocation.ExitCode.ShouldBe(2, unknownLocation.ToString());
        unknownLocation.Stderr.ShouldContain("there is no location 'nowhere'");
        runs.Select(r => (string?)r!["status"]).ShouldBe(["failed", "succeeded"]);
        logs.Stdout.ShouldContain("Hello, stream!");
        jobs.ExitCode.ShouldBe(0, jobs.ToString());
        jobs.Stdout.ShouldContain("      --param rows=<integer>  (default 200)  how many rows to extract");
        jobs.Stdout.ShouldContain("      --param name=<string>  (default \"world\")  who to greet");
        jobs.Stdout.ShouldContain("      ops: extract, clean <- extract, score <- extract, load <- clean+score");
    }

    [Fact]
    public async Task Rollback_puts_the_earlier_release_back_uploading_nothing()
    {
        var first = await DeployAsync(fixture.Hello, "rollback");
        var second = await DeployAsync(PlatformFixture.Howdy, "rollback");

        var blobsBefore = await CountServerBlobsAsync();
        var rollback = await Platform.SkiffAsync("rollback", "rollback", "--json");
        var blobsAfter = await CountServerBlobsAsync();
        var history = JsonNode.Parse((await Platform.SkiffAsync("history", "rollback", "--json")).Stdout)!.AsArray();
        var table = (await Platform.SkiffAsync("history", "rollback")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var run = await Platform.SkiffAsync("run", "rollback", "hello");

        rollback.ExitCode.ShouldBe(0, rollback.ToString());
        var rolledBack = JsonNode.Parse(rollback.Stdout)!;
        ((string?)rolledBack["outcome"]).ShouldBe("live");
        ((string?)rolledBack["deployment"]).ShouldBe((string?)history[0]!["deployment"]);
        ((string?)second["release"]).ShouldNotBe((string?)first["release"]);
        // All three went live in their time; only the rollback serves now.
        history.Select(d => (bool?)d!["live"]).ShouldBe([true, false, false]);
        table.Single(l => l.StartsWith((string)history[0]!["deployment"]!, StringComparison.Ordinal)).ShouldContain(" live ");
        table.Single(l => l.StartsWith((string)history[1]!["deployment"]!, StringComparison.Ordinal)).ShouldContain(" superseded ");
        table.Single(l => l.StartsWith((string)history[2]!["deployment"]!, StringComparison.Ordinal)).ShouldContain(" superseded ");
        var latest = history[0]!;
        ((string?)latest["path"]).ShouldBe("rollback");
        ((string?)latest["release"]).ShouldBe((string?)first["release"]);
        ((string?)latest["rollback_of"]).ShouldBe((string?)first["deployment"]);
        ((long?)latest["uploaded"]!["bytes"]).ShouldBe(0);
        blobsAfter.ShouldBe(blobsBefore);
        run.Stdout.ShouldContain("Hello, world!");
    }

    [Fact]
    public async Task A_failing_new_version_leaves_the_old_one_live_and_the_deploy_exits_non_zero()
    {
        var good = await DeployAsync(fixture.Hello, "guarded");
        var broken = PlatformFixture.BrokenOnPurpose;

        var deploy = await Platform.SkiffAsync("deploy", broken, "--location", "guarded", "--json");
        var locations = JsonNode.Parse((await Platform.SkiffAsync("locations", "--json")).Stdout)!.AsArray();
        var table = await Platform.SkiffAsync("locations");
        var run = await Platform.SkiffAsync("run", "guarded", "hello");

        deploy.ExitCode.ShouldNotBe(0, deploy.ToString());
        var result = JsonNode.Parse(deploy.Stdout)!;
        ((string?)result["outcome"]).ShouldBe("failed");
        ((string)result["error"]!).ShouldContain("broken on purpose");
        ((string)result["error"]!).ShouldContain("stays live");
        var guarded = locations.Single(l => (string?)l!["location"] == "guarded")!;
        ((string?)guarded["release"]).ShouldBe((string?)good["release"]);
        ((string?)guarded["health"]).ShouldBe("healthy");
        // Health keeps to its values; what the agent reported is there beside it, and under the table.
        ((string?)guarded["last_report"]!["kind"]).ShouldBe("activation_failed");
        ((string)guarded["last_report"]!["message"]!).ShouldContain("broken on purpose");
        // About the release that failed, not the live one.
        ((string?)guarded["last_report"]!["release"]).ShouldStartWith("sha256:");
        ((string?)guarded["last_report"]!["release"]).ShouldNotBe((string?)good["release"]);
        table.Stdout.ShouldContain("guarded: activation_failed at ");
        run.ExitCode.ShouldBe(0, run.ToString());
    }

    [Fact]
    public async Task A_project_whose_Main_never_calls_RunAsync_fails_its_first_deploy_saying_so_and_not_that_anything_stays_live()
    {
        var project = fixture.Variant("no-runasync", text => text.Replace(
            "return await SkiffApp.RunAsync",
            "if (args.Length > 0) return 0; // forgot to hand over to Skiff\nreturn await SkiffApp.RunAsync",
            StringComparison.Ordinal));

        var deploy = await Platform.SkiffAsync("deploy", project, "--location", "never-served");

        deploy.ExitCode.ShouldNotBe(0, deploy.ToString());
        deploy.Stderr.ShouldContain("the entry assembly exited (code 0) without starting Skiff's code server: does Main call SkiffApp.RunAsync(args, …) and return its result?");
        deploy.Stderr.ShouldNotContain("still live");
        deploy.Stderr.ShouldNotContain("stays live");
    }

    [Fact]
    public async Task An_sdk_speaking_a_protocol_the_agent_cannot_serve_fails_activation_naming_both_versions()
    {
        // A program that says hello as a future SDK would: protocol 99.
        var project = fixture.Variant("future-sdk", text => text.Replace(
            "return await SkiffApp.RunAsync",
            """
            if (args is ["serve", "--connect", var socketPath, ..])
            {
                using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                socket.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath));
                socket.Send("{\"type\":\"hello\",\"protocol\":99,\"sdk\":\"9.9.0\",\"pid\":1,\"jobs\":0}\n"u8);
                socket.Receive(new byte[1]); // until the agent hangs up
                return 0;
            }

            return await SkiffApp.RunAsync
            """,
            StringComparison.Ordinal));

        var deploy = await Platform.SkiffAsync("deploy", project, "--location", "future", "--json");

        deploy.ExitCode.ShouldNotBe(0, deploy.ToString());
        var error = (string)JsonNode.Parse(deploy.Stdout)!["error"]!;
        error.ShouldContain("uses Skiff.Sdk 9.9.0, which speaks code-server protocol 99; this agent (skiff 0.1.0) serves protocol 1 only");
        error.ShouldNotContain("stays live");
    }

    [Fact]
    public async Task Two_deploys_to_one_location_at_once_are_both_recorded_and_the_later_one_ends_live()
    {
        // Two releases that other tests build too (any two do: what is raced is the location's turn, not the build).
        var one = PlatformFixture.Howdy;
        var two = fixture.Hello;
        // Build both first so the two deploys reach the server at about the same time.
        (await Platform.SkiffAsync("build", one)).ExitCode.ShouldBe(0);
        (await Platform.SkiffAsync("build", two)).ExitCode.ShouldBe(0);

        var results = await Task.WhenAll(DeployAsync(one, "race"), DeployAsync(two, "race"));
        var history = JsonNode.Parse((await Platform.SkiffAsync("history", "race", "--json")).Stdout)!.AsArray();
        var live = JsonNode.Parse((await Platform.SkiffAsync("locations", "--json")).Stdout)!.AsArray().Single(l => (string?)l!["location"] == "race")!;

        results.ShouldAllBe(r => (string?)r["outcome"] == "live");
        history.Count.ShouldBe(2);
        ((string?)live["release"]).ShouldBe((string?)history[0]!["release"], "the deployment registered later is the one live");
        ((string?)live["deployment"]).ShouldBe((string?)history[0]!["deployment"]);
    }

    [Fact]
    public async Task Deploys_to_different_locations_proceed_in_parallel()
    {
        // The slow one's code server waits for a file before it serves: its activation lasts until the test says, and
        // not a timeout that a loaded machine could outlast with the quick deploy.
        var gate = fixture.Workspace.PathTo("gate-slow-location");
        var hanging = fixture.Variant("hanging", text => text.Replace(
            "return await SkiffApp.RunAsync",
            $"while (args.Length > 0 && !File.Exists(\"{gate}\")) await Task.Delay(20);\nreturn await SkiffApp.RunAsync",
            StringComparison.Ordinal));
        (await Platform.SkiffAsync("build", hanging)).ExitCode.ShouldBe(0);
        (await Platform.SkiffAsync("build", fixture.Hello)).ExitCode.ShouldBe(0);

        var slow = DeployAsync(hanging, "slow-location", expectLive: false);
        // The slow deploy holds its location's turn before the quick one starts: only per-location queues let it pass.
        await WaitForPendingAsync("slow-location");
        var quick = await DeployAsync(fixture.Hello, "quick-location");
        var slowWasGoing = !slow.IsCompleted;
        await File.WriteAllTextAsync(gate, "");

        slowWasGoing.ShouldBeTrue("the quick location went live while the slow one was still activating");
        ((string?)quick["outcome"]).ShouldBe("live");
        ((string?)(await slow)["outcome"]).ShouldBe("live", "the slow one goes live once its code server serves");
    }

    [Fact]
    public async Task A_run_canceled_with_skiff_cancel_ends_canceled_and_skiff_run_exits_130()
    {
        var backfill = PlatformFixture.SharedBackfill;
        await DeployAsync(backfill, "long");

        var following = Platform.SkiffAsync("run", "long", "backfill", "--param", "days=100000", "--param", "batch_ms=50");
        var runId = await WaitForRunningAsync("long");
        var cancel = await Platform.SkiffAsync("cancel", runId);
        var run = await following;
        var logs = await Platform.SkiffAsync("logs", runId);
        var runs = JsonNode.Parse((await Platform.SkiffAsync("runs", "long", "--json")).Stdout)!.AsArray();

        cancel.ExitCode.ShouldBe(0, cancel.ToString());
        run.ExitCode.ShouldBe(130, run.ToString());
        run.Stdout.ShouldContain("run canceled");
        logs.Stdout.ShouldContain("canceled after");
        ((string?)runs.Single(r => (string?)r!["run"] == runId)!["status"]).ShouldBe("canceled");
    }

    [Fact]
    public async Task A_memory_limit_stays_with_the_location_through_later_deploys_and_rollbacks_until_lifted()
    {
        var project = fixture.Variant("memory", text => text.Replace(
            "return await SkiffApp.RunAsync(args, jobs =>\n{",
            """
            return await SkiffApp.RunAsync(args, jobs =>
            {
                jobs.Job("limit", "Logs the heap limit this process runs under")
                    .Run(context =>
                    {
                        context.Logger.LogInformation("heap limit {Bytes} bytes", GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);
                        return Task.CompletedTask;
                    });
            """,
            StringComparison.Ordinal));
        var program = Path.Combine(project, "Program.cs");
        // 300 MiB; where a cgroup bounds the whole process, the heap gets three quarters of it (docs/agent.md, "Limits").
        var limited = $"heap limit {(Platform.CgroupsBoundMemory ? 314572800 / 4 * 3 : 314572800)} bytes";

        var first = await Platform.SkiffAsync("deploy", project, "--location", "bounded", "--memory", "300MiB");
        var typo = await Platform.SkiffAsync("deploy", project, "--location", "bounded", "--memory", "lots");
        await File.AppendAllTextAsync(program, "\n// edited\n");
        var fast = await DeployAsync(project, "bounded");
        var runFast = await Platform.SkiffAsync("run", "bounded", "limit");
        var rollback = await Platform.SkiffAsync("rollback", "bounded");
        var runRolledBack = await Platform.SkiffAsync("run", "bounded", "limit");
        var lifted = await Platform.SkiffAsync("deploy", project, "--location", "bounded", "--memory", "none");
        var runLifted = await Platform.SkiffAsync("run", "bounded", "limit");
        var history = await Platform.Server.Store.ListDeploymentsAsync("bounded", 10, CancellationToken.None);
        var location = await Platform.Server.Store.GetLocationAsync("bounded", CancellationToken.None);

        first.ExitCode.ShouldBe(0, first.ToString());
        typo.ExitCode.ShouldBe(2, typo.ToString());
        typo.Stderr.ShouldContain("'lots' is not a memory limit");
        ((string?)fast["path"]).ShouldBe("fast");
        rollback.ExitCode.ShouldBe(0, rollback.ToString());
        lifted.ExitCode.ShouldBe(0, lifted.ToString());
        history.Select(d => d.MemoryLimit).ShouldBe([null, "300MiB", "300MiB", "300MiB"]);
        location!.MemoryLimit.ShouldBeNull();
        runFast.Stdout.ShouldContain(limited);
        runRolledBack.Stdout.ShouldContain(limited);
        runLifted.ExitCode.ShouldBe(0, runLifted.ToString());
        runLifted.Stdout.ShouldContain("heap limit ");
        runLifted.Stdout.ShouldNotContain(limited);
    }

    [Fact]
    public async Task Ctrl_C_during_run_stops_following_says_the_run_goes_on_and_how_to_follow_or_cancel_it_and_exits_130()
    {
        var backfill = PlatformFixture.SharedBackfill;
        await DeployAsync(backfill, "interrupted");
        using var following = StartFollowing("run", "interrupted", "backfill", "--param", "days=100000", "--param", "batch_ms=50");
        var runId = await WaitForRunningAsync("interrupted");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var said = await InterruptOnceStreamingAsync(following, deadline.Token);
        var stillRunning = (await Platform.Server.Store.ListRunsAsync("interrupted", 1, deadline.Token)).Single();
        var cancel = await Platform.SkiffAsync("cancel", runId, "--json");

        following.ExitCode.ShouldBe(130, said);
        said.ShouldContain($"stopped following run {runId}; it goes on on the platform.");
        said.ShouldContain($"`skiff logs {runId} --follow`");
        said.ShouldContain($"`skiff cancel {runId}`");
        stillRunning.Status.ShouldBe("running");
        cancel.ExitCode.ShouldBe(0, cancel.ToString());
        var canceled = JsonNode.Parse(cancel.Stdout)!;
        ((string?)canceled["run"]).ShouldBe(runId);
        ((bool?)canceled["canceled"]).ShouldBe(true);
    }

    [Fact]
    public async Task Ctrl_C_during_logs_follow_says_the_run_goes_on_and_exits_130()
    {
        var backfill = PlatformFixture.SharedBackfill;
        await DeployAsync(backfill, "logs-interrupted");
        var started = await Platform.SkiffAsync("run", "logs-interrupted", "backfill", "--param", "days=100000", "--param", "batch_ms=50", "--detach");
        started.ExitCode.ShouldBe(0, started.ToString());
        var runId = started.Stdout.Trim();
        using var following = StartFollowing("logs", runId, "--follow");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var said = await InterruptOnceStreamingAsync(following, deadline.Token);
        var stillRunning = (await Platform.Server.Store.GetRunAsync(runId, deadline.Token))!;
        var cancel = await Platform.SkiffAsync("cancel", runId);

        following.ExitCode.ShouldBe(130, said);
        said.ShouldContain($"stopped following run {runId}; it goes on on the platform.");
        stillRunning.Status.ShouldBe("running");
        cancel.ExitCode.ShouldBe(0, cancel.ToString());
    }

    [Fact]
    public async Task Twenty_concurrent_deploys_of_one_project_folder_serialize_their_builds_and_all_succeed()
    {
        var project = fixture.Workspace.CopySample("Hello", "concurrent");

        var deploys = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Platform.SkiffAsync("deploy", project, "--location", "concurrent", "--json")));

        foreach (var deploy in deploys)
        {
            deploy.ExitCode.ShouldBe(0, deploy.ToString());
        }

        var results = deploys.Select(d => JsonNode.Parse(d.Stdout)!).ToList();
        results.ShouldAllBe(r => (string?)r["outcome"] == "live");
        results.Select(r => (string?)r["release"]).Distinct().ShouldHaveSingleItem("one project, one release");
        deploys.Count(d => d.Stderr.Contains("another build of Hello.csproj is running", StringComparison.Ordinal)).ShouldBeGreaterThan(0, "some waited for another's build");
    }

    [Fact]
    public async Task On_a_terminal_deploy_shows_moving_progress_and_in_CI_only_plain_lines()
    {
        var project = fixture.Variant("terminal", text => text.Replace("Hello, {Name}!", "Terminal, {Name}!", StringComparison.Ordinal));

        var terminal = await UnderTerminalAsync(project, "terminal", ci: "");
        var ci = await UnderTerminalAsync(project, "terminal-ci", ci: "true");

        terminal.ExitCode.ShouldBe(0, terminal.ToString());
        // (CliProcess reads lines, and a lone \r ends one: the escape code is what shows a line being redrawn.)
        terminal.Stdout.ShouldContain("\u001b[K");
        terminal.Stdout.ShouldContain("uploading ");
        terminal.Stdout.ShouldContain("live on terminal");
        ci.ExitCode.ShouldBe(0, ci.ToString());
        // (.NET itself writes a keypad-mode sequence to a terminal at start; no line is ever cleared and redrawn.)
        ci.Stdout.ShouldNotContain("\u001b[K");
        ci.Stdout.ShouldNotContain("…", Case.Sensitive, "a status line in the making; plain mode prints finished steps only");
        ci.Stdout.ShouldContain("upload ");
        ci.Stdout.ShouldContain("live on terminal-ci");
    }

    /// <summary>Runs deploy under a pseudo-terminal (util-linux `script`), as a person at a terminal would.</summary>
    private Task<Skiff.Testing.CliProcess.Result> UnderTerminalAsync(string project, string location, string ci) =>
        Skiff.Testing.CliProcess.RunAsync(
            "script",
            ["-qefc", $"dotnet '{Path.Combine(AppContext.BaseDirectory, "skiff.dll")}' deploy '{project}' --location {location}", "/dev/null"],
            Platform.DataDirectory,
            Platform.Home,
            new Dictionary<string, string> { ["SKIFF_URL"] = Platform.Url.ToString(), ["SKIFF_TOKEN"] = Platform.Token, ["CI"] = ci, ["TERM"] = "xterm" });

    /// <summary>A `skiff` command that follows a run, started as a user starts it.</summary>
    private System.Diagnostics.Process StartFollowing(params string[] arguments) =>
        System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Platform.DataDirectory,
            Environment = { ["SKIFF_HOME"] = Platform.Home, ["SKIFF_URL"] = Platform.Url.ToString(), ["SKIFF_TOKEN"] = Platform.Token },
        })!;

    /// <summary>Sends Ctrl-C (SIGINT) once the follower prints the run's start, waits for it to exit, and returns its stderr.</summary>
    private static async Task<string> InterruptOnceStreamingAsync(System.Diagnostics.Process following, CancellationToken deadline)
    {
        var stderr = following.StandardError.ReadToEndAsync(deadline);
        // The run prints its start before any progress; once that is printed, the follower is streaming.
        while (await following.StandardOutput.ReadLineAsync(deadline) is { } line && !line.Contains("started", StringComparison.Ordinal))
        {
        }

        using (var kill = System.Diagnostics.Process.Start("kill", ["-INT", following.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!)
        {
            await kill.WaitForExitAsync(deadline);
        }

        _ = following.StandardOutput.ReadToEndAsync(deadline);
        await following.WaitForExitAsync(deadline);
        return await stderr;
    }

    private async Task<string> WaitForRunningAsync(string location)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var runs = await Platform.Server.Store.ListRunsAsync(location, 1, deadline.Token);
            if (runs is [{ Status: "running" } run] && (await Platform.Server.Store.GetRunEventsAsync(run.Id, 0, 10, deadline.Token)).Any(e => e.Json.Contains("\"progress\"", StringComparison.Ordinal)))
            {
                return run.Id;
            }

            await Task.Delay(50, deadline.Token);
        }
    }

    private async Task WaitForPendingAsync(string location)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while ((await Platform.Server.Store.ListDeploymentsAsync(location, 1, deadline.Token)) is not [{ Outcome: "pending" }])
        {
            await Task.Delay(50, deadline.Token);
        }
    }

    private async Task<int> CountServerBlobsAsync()
    {
        var count = 0;
        await foreach (var _ in Platform.Server.Blobs.ListAsync(CancellationToken.None))
        {
            count++;
        }

        return count;
    }

    private async Task<JsonNode> DeployAsync(string project, string location, bool expectLive = true, EmbeddedPlatform? platform = null)
    {
        var deploy = await (platform ?? Platform).SkiffAsync("deploy", project, "--location", location, "--json");
        if (expectLive)
        {
            deploy.ExitCode.ShouldBe(0, deploy.ToString());
        }

        return JsonNode.Parse(deploy.Stdout) ?? throw new InvalidOperationException(deploy.ToString());
    }

    private static async Task<byte[]> ReadAsync(Skiff.Core.Blobs.FileBlobStore store, Digest digest)
    {
        await using var stream = await store.OpenReadAsync(digest, CancellationToken.None);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }
}
