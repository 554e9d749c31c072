using System.Text;
using System.Text.Json.Nodes;
using Skiff.Agent.CodeServers;
using Skiff.Testing;

namespace Skiff.Sdk.Tests.Protocol;

/// <summary>The code-server protocol as an agent sees it: real processes of the sample and the test app, over a Unix socket.</summary>
public sealed class CodeServerProcessTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Hello_sample_lists_its_definitions_and_runs_hello_with_events_in_order()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.Hello);

        var listed = await server.ListAsync(Timeout());
        var jobs = listed.Jobs;
        var run = await server.StartRunAsync("run-hello-1", "hello", new JsonObject { ["name"] = "protocol" }, "sha256:" + new string('a', 64), Timeout());
        var events = await CollectAsync(run);

        server.Hello.Protocol.ShouldBe(1);
        jobs.Select(j => (string?)j!["name"]).ShouldBe(["hello", "etl"]);
        var etl = jobs.Single(j => (string?)j!["name"] == "etl")!;
        etl["ops"]!.AsArray().Select(o => (string?)o!["name"]).ShouldBe(["extract", "clean", "score", "load"]);
        etl["parameters"]!.AsArray().Select(p => (string?)p!["name"]).ShouldBe(["rows", "fail"]);
        listed.Tasks.ShouldBeNull("Hello declares no task, so it is not a pool");

        events.Select(e => (long)e["seq"]!).ShouldBe(Enumerable.Range(1, events.Count).Select(i => (long)i));
        events.ShouldAllBe(e => (int?)e["v"] == 1 && (string?)e["run"] == "run-hello-1" && e["ts"] != null);
        events.First()["type"]!.GetValue<string>().ShouldBe("run_started");
        ((string?)events.First()["release"]).ShouldBe("sha256:" + new string('a', 64));
        events.Last()["type"]!.GetValue<string>().ShouldBe("run_succeeded");
        var logs = events.Where(e => (string?)e["type"] == "log").ToList();
        ((string?)logs[0]["message"]).ShouldBe("Hello, protocol!");
        ((string?)logs[0]["properties"]!["Name"]).ShouldBe("protocol");
        logs.ShouldContain(e => ((string?)e["message"])!.StartsWith("sqlite 3.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_run_whose_op_calls_a_task_on_an_agent_without_a_server_fails_saying_so_and_nothing_runs()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.TestApp);

        var events = await CollectAsync(await server.StartRunAsync("run-calls-task", "calls_task", null, null, Timeout()));

        var failed = events.Single(e => (string?)e["type"] == "op_failed");
        ((string?)failed["error"]!["type"]).ShouldBe("Skiff.Sdk.TaskCallException");
        ((string?)failed["error"]!["message"]).ShouldStartWith(
            "op 'calls_task' called task 'double' of pool 'testapp'; the call was refused and nothing was queued: this agent is not connected to a server");
        events.Last()["type"]!.GetValue<string>().ShouldBe("run_failed");
        events.ShouldNotContain(e => (string?)e["type"] == "task_started");
    }

    [Fact]
    public async Task Hello_etl_runs_its_independent_ops_at_the_same_time()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.Hello);

        var events = await CollectAsync(await server.StartRunAsync("run-etl-1", "etl", null, null, Timeout()));

        events.Last()["type"]!.GetValue<string>().ShouldBe("run_succeeded");
        var clean = Interval(events, "clean");
        var score = Interval(events, "score");
        (clean.Start < score.End && score.Start < clean.End).ShouldBeTrue($"clean {clean} and score {score} should overlap");
        Interval(events, "load").Start.ShouldBeGreaterThanOrEqualTo(new[] { clean.End, score.End }.Max());
        events.ShouldContain(e => (string?)e["type"] == "progress" && (string?)e["op"] == "extract");
        events.ShouldContain(e => (string?)e["type"] == "metadata" && (int?)e["metadata"]!["rows"] == 200);
    }

    [Fact]
    public async Task Ops_that_can_only_finish_together_do_finish()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.TestApp);

        var events = await CollectAsync(await server.StartRunAsync("run-overlap", "overlap", null, null, Timeout()));

        events.Last()["type"]!.GetValue<string>().ShouldBe("run_succeeded");
    }

    [Fact]
    public async Task A_failing_op_skips_its_dependents_and_fails_the_run()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.Hello);

        var events = await CollectAsync(await server.StartRunAsync("run-etl-fail", "etl", new JsonObject { ["fail"] = "clean" }, null, Timeout()));

        var failed = events.Single(e => (string?)e["type"] == "op_failed");
        ((string?)failed["op"]).ShouldBe("clean");
        ((string?)failed["error"]!["type"]).ShouldBe("System.InvalidOperationException");
        ((string?)failed["error"]!["stack"]).ShouldNotBeNullOrEmpty();
        events.Single(e => (string?)e["type"] == "op_skipped")["op"]!.GetValue<string>().ShouldBe("load");
        events.ShouldContain(e => (string?)e["type"] == "op_succeeded" && (string?)e["op"] == "score");
        var end = events.Last();
        ((string?)end["type"]).ShouldBe("run_failed");
        ((string)end["reason"]!).ShouldContain("op 'clean' failed");
    }

    [Fact]
    public async Task A_canceled_long_running_op_ends_the_run_canceled_promptly()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.TestApp);
        var run = await server.StartRunAsync("run-slow", "slow", null, null, Timeout());
        await foreach (var e in run.Events.ReadAllAsync(Timeout()))
        {
            if (e.Type == "progress")
            {
                break;
            }
        }

        var canceledAt = DateTimeOffset.UtcNow;
        await server.CancelRunAsync("run-slow", Timeout());
        var end = await run.Completion.WaitAsync(TimeSpan.FromSeconds(60));

        // The job never ends on its own, so any end is the cancel's; the bound is against a cancel that waits for
        // something (a grace period, the next step), with room for a loaded machine.
        ((string?)end["type"]).ShouldBe("run_canceled");
        (DateTimeOffset.Parse((string)end["ts"]!, System.Globalization.CultureInfo.InvariantCulture) - canceledAt).ShouldBeLessThan(TimeSpan.FromSeconds(15));
        (await server.HealthAsync(Timeout())).Status.ShouldBe("ok");
    }

    [Theory]
    [InlineData("failfast", "Environment.FailFast")]
    [InlineData("stackoverflow", "Stack overflow")]
    public async Task A_job_that_takes_the_process_down_fails_its_run_with_the_reason(string job, string expected)
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.TestApp);

        var run = await server.StartRunAsync("run-" + job, job, null, null, Timeout());
        var end = await run.Completion.WaitAsync(Deadline);
        var exit = await server.Exited.WaitAsync(Deadline);
        var events = new List<JsonObject>();
        using var reading = new CancellationTokenSource(Deadline);
        await foreach (var runEvent in run.Events.ReadAllAsync(reading.Token))
        {
            events.Add(runEvent.ToJsonObject());
        }

        ((string?)end["type"]).ShouldBe("run_failed");
        // The agent's own run_failed continues the run's numbering: 1, 2, 3 … with no gap.
        events.Select(e => (long?)e["seq"]).ShouldBe(Enumerable.Range(1, events.Count).Select(i => (long?)i));
        events[^1].ToJsonString().ShouldBe(end.ToJsonString(), "the end is the last event");
        ((string)end["reason"]!).ShouldContain("SIGABRT");
        ((string)end["reason"]!).ShouldContain(expected);
        exit.ExitCode.ShouldBe(134);
        await Should.ThrowAsync<CodeServerException>(() => server.HealthAsync(Timeout()));
    }

    [Fact]
    public async Task Bad_input_gets_an_error_and_the_code_server_keeps_serving()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.Hello);

        await server.SendRawAsync("{not json\n"u8.ToArray(), Timeout());
        var malformed = await server.UnsolicitedErrors.Reader.ReadAsync(Timeout());
        await server.SendRawAsync(Encoding.UTF8.GetBytes("{\"type\":\"start\",\"id\":9,\"pad\":\"" + new string('x', 2 * 1024 * 1024) + "\"}\n"), Timeout());
        var tooLarge = await server.UnsolicitedErrors.Reader.ReadAsync(Timeout());
        var unknownJob = await Should.ThrowAsync<CodeServerException>(() => server.StartRunAsync("r1", "no_such_job", null, null, Timeout()));
        var badParameter = await Should.ThrowAsync<CodeServerException>(() => server.StartRunAsync("r2", "etl", new JsonObject { ["rows"] = "many" }, null, Timeout()));
        var unknownRun = await Should.ThrowAsync<CodeServerException>(() => server.CancelRunAsync("never-started", Timeout()));

        malformed.Code.ShouldBe("malformed");
        tooLarge.Code.ShouldBe("frame_too_large");
        unknownJob.Code.ShouldBe("unknown_job");
        unknownJob.Message.ShouldContain("no_such_job");
        badParameter.Code.ShouldBe("bad_parameters");
        badParameter.Message.ShouldContain("'rows'");
        unknownRun.Code.ShouldBe("unknown_run");
        (await server.HealthAsync(Timeout())).Status.ShouldBe("ok");
        (await CollectAsync(await server.StartRunAsync("r3", "hello", null, null, Timeout()))).Last()["type"]!.GetValue<string>().ShouldBe("run_succeeded");
    }

    [Fact]
    public async Task An_unknown_message_type_gets_an_error_naming_it()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.Hello);

        await server.SendRawAsync("{\"type\":\"reticulate\",\"id\":\"x\"}\n"u8.ToArray(), Timeout());
        var error = await server.UnsolicitedErrors.Reader.ReadAsync(Timeout());

        error.Code.ShouldBe("unknown_type");
        error.Message.ShouldContain("reticulate");
    }

    [Fact]
    public async Task Shutdown_cancels_what_still_runs_after_the_grace_period_and_exits_cleanly()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.TestApp);
        var run = await server.StartRunAsync("run-slow-shutdown", "slow", null, null, Timeout());

        var exit = await server.ShutdownAsync(TimeSpan.FromMilliseconds(200), Timeout());

        exit.ExitCode.ShouldBe(0);
        ((string?)(await run.Completion.WaitAsync(Deadline))["type"]).ShouldBe("run_canceled");
    }

    [Fact]
    public async Task A_program_whose_main_throws_is_reported_with_its_stderr()
    {
        var error = await Should.ThrowAsync<CodeServerException>(() =>
            TestPrograms.StartAsync(TestPrograms.TestApp, new Dictionary<string, string> { ["SKIFF_TESTAPP_THROW_IN_MAIN"] = "1" }));

        error.Message.ShouldContain("did not start");
        error.Message.ShouldContain("Main threw before handing over to Skiff");
    }

    [Fact]
    public async Task A_program_that_hangs_up_before_saying_hello_is_reported_with_how_it_exited()
    {
        // Connects as a code server would, then dies in its startup code before the hello.
        const string script = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[-1]); "
            + "sys.stderr.write('startup failed\\n'); s.close(); sys.exit(7)";
        var launch = new CodeServerLaunch("python3", ["-c", script], Path.GetTempPath());

        var error = await Should.ThrowAsync<CodeServerException>(() => CodeServerProcess.StartAsync(launch, TimeSpan.FromSeconds(60), CancellationToken.None));

        error.Message.ShouldContain("exited with code 7");
        error.Message.ShouldContain("before it said hello");
        error.Message.ShouldContain("startup failed");
    }

    [Fact]
    public async Task A_retried_op_succeeds_on_its_third_attempt()
    {
        await using var server = await TestPrograms.StartAsync(TestPrograms.TestApp);

        var events = await CollectAsync(await server.StartRunAsync("run-flaky", "flaky", null, null, Timeout()));

        events.Count(e => (string?)e["type"] == "op_retrying").ShouldBe(2);
        events.Last()["type"]!.GetValue<string>().ShouldBe("run_succeeded");
    }

    [Theory]
    [InlineData(new[] { "run", "hello", "--param", "name=cli" }, 0, "Hello, cli!")]
    [InlineData(new[] { "run", "etl", "--param", "fail=load" }, 1, "run failed")]
    [InlineData(new[] { "run", "etl", "--param", "rows=lots" }, 2, "parameter 'rows' must be an integer")]
    [InlineData(new[] { "run", "nope" }, 2, "there is no job 'nope'")]
    [InlineData(new[] { "list" }, 0, "etl")]
    public async Task Local_runner_exit_codes_and_output(string[] arguments, int exitCode, string expected)
    {
        var result = await CliProcess.RunAsync("dotnet", [TestPrograms.Hello, .. arguments], Path.GetTempPath());

        result.ExitCode.ShouldBe(exitCode, result.ToString());
        (result.Stdout + result.Stderr).ShouldContain(expected);
    }

    private static CancellationToken Timeout() => new CancellationTokenSource(Deadline).Token;

    private static async Task<List<JsonObject>> CollectAsync(RunHandle run)
    {
        var events = new List<JsonObject>();
        await foreach (var e in run.Events.ReadAllAsync(Timeout()))
        {
            events.Add(e.ToJsonObject());
        }

        return events;
    }

    private static (DateTimeOffset Start, DateTimeOffset End) Interval(List<JsonObject> events, string op)
    {
        DateTimeOffset Time(string type) => DateTimeOffset.Parse(
            (string)events.Single(e => (string?)e["type"] == type && (string?)e["op"] == op)["ts"]!,
            System.Globalization.CultureInfo.InvariantCulture);
        return (Time("op_started"), Time("op_succeeded"));
    }
}
