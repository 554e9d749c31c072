using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Skiff.Sdk.Events;
using Skiff.Sdk.Tests.Execution;

namespace Skiff.Sdk.Tests.Local;

/// <summary>A Skiff program run by hand: <c>list</c> and <c>run</c> through <see cref="SkiffApp"/>, output captured.</summary>
public sealed partial class LocalRunnerTests
{
    private sealed record Result(int ExitCode, string Output, string Error)
    {
        public string[] Lines => Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();

        /// <summary>The output lines without their local-time prefix and with the random run id replaced.</summary>
        public string[] Readable => [.. Lines.Select(l => RunId().Replace(TimePrefix().Replace(l, ""), "RUN"))];

        public override string ToString() => $"exit {ExitCode}\n--- output\n{Output}\n--- error\n{Error}";
    }

    [Fact]
    public async Task List_PrintsJobsWithTheirParametersAndOps()
    {
        var result = await RunAsync("list");

        result.ExitCode.ShouldBe(0, result.ToString());
        result.Error.ShouldBeEmpty();
        result.Lines.ShouldBe([
            "hello                    Says hello",
            "    --param name=<string>  (default \"world\")  Who to greet",
            "etl",
            "    --param rows=<integer>  (required)",
            "    --param limit=<integer>  (default 100)",
            "    ops: extract, load <- extract",
            "broken",
        ]);
    }

    [Fact]
    public async Task ListJson_PrintsTheDefinitionsAsTheProtocolDescribesThem()
    {
        // Prime the shared options so this test checks the shape regardless of test order; that an
        // unprimed process crashes here is ListJson_AsTheFirstJsonAProgramWrites_DoesNotCrash.
        JsonSerializer.Serialize(0, SdkJson.Options);

        var result = await RunAsync("list", "--json");

        result.ExitCode.ShouldBe(0, result.ToString());
        result.Lines.Length.ShouldBe(1);
        var jobs = JsonNode.Parse(result.Output)!.AsArray();
        jobs.Select(j => (string?)j!["name"]).ShouldBe(["hello", "etl", "broken"]);
        jobs[0]!.ToJsonString().ShouldBe(
            """{"name":"hello","description":"Says hello","tags":["demo"],"parameters":[{"name":"name","type":"string","required":false,"default":"world","description":"Who to greet"}],"ops":[{"name":"hello","depends_on":[],"max_attempts":1}]}""");
        var etl = jobs[1]!;
        etl["parameters"]!.ToJsonString().ShouldBe(
            """[{"name":"rows","type":"integer","required":true,"default":null,"description":null},{"name":"limit","type":"integer","required":false,"default":100,"description":null}]""");
        etl["ops"]!.ToJsonString().ShouldBe(
            """[{"name":"extract","depends_on":[],"max_attempts":1},{"name":"load","depends_on":["extract"],"max_attempts":3}]""");
    }

    [Fact]
    public async Task RunHello_ExitsZero_AndPrintsOneReadableLinePerEvent()
    {
        var result = await RunAsync("run", "hello");

        result.ExitCode.ShouldBe(0, result.ToString());
        result.Error.ShouldBeEmpty();
        result.Lines.ShouldAllBe(line => TimePrefix().IsMatch(line));
        result.Readable.ShouldBe([
            "run RUN started: hello name=world",
            "hello            started",
            "hello            info  Hello, world!",
            "hello            succeeded in 0 ms",
            "run succeeded in 0 ms",
        ]);
    }

    [Fact]
    public async Task Run_WithParameters_PassesThemToTheJob()
    {
        var result = await RunAsync("run", "hello", "--param", "name=Ada");
        var shortForm = await RunAsync("run", "hello", "-p", "name=Grace");

        result.Readable.ShouldContain("hello            info  Hello, Ada!");
        shortForm.Readable.ShouldContain("hello            info  Hello, Grace!");
    }

    [Fact]
    public async Task RunMultiOpJob_ShowsProgressMetadataAndRetries()
    {
        var result = await RunAsync("run", "etl", "--param", "rows=2");

        result.ExitCode.ShouldBe(0, result.ToString());
        result.Readable.ShouldBe([
            "run RUN started: etl rows=2 limit=100",
            "extract          started",
            "extract           50%  half way",
            "extract          metadata rows=2",
            "extract          succeeded in 0 ms",
            "load             started",
            "load             attempt 1 failed (not yet); retrying in 0 ms",
            "load             started (attempt 2)",
            "load             succeeded in 0 ms",
            "run succeeded in 0 ms",
        ]);
    }

    [Fact]
    public async Task RunFailingJob_ExitsOne_AndShowsTheError()
    {
        var result = await RunAsync("run", "broken");

        result.ExitCode.ShouldBe(1, result.ToString());
        var lines = result.Readable;
        lines.ShouldContain("broken           FAILED: System.InvalidOperationException: disk full");
        lines.ShouldContain(l => l.StartsWith("      System.InvalidOperationException: disk full", StringComparison.Ordinal));
        lines[^1].ShouldBe("run failed in 0 ms: op 'broken' failed: disk full");
    }

    [Fact]
    public async Task RunUnknownJob_ExitsTwo_ListingTheJobs()
    {
        var result = await RunAsync("run", "nope");

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Output.ShouldBeEmpty();
        result.Error.Trim().ShouldBe("error: there is no job 'nope'. Jobs: hello, etl, broken.");
    }

    [Theory]
    [InlineData(new[] { "run", "etl" }, "error: parameter 'rows' (integer) is required and was not given.")]
    [InlineData(new[] { "run", "etl", "--param", "rows=many" }, "error: parameter 'rows' must be an integer; got 'many'.")]
    [InlineData(new[] { "run", "hello", "--param", "nmae=Ada" }, "error: job 'hello' has no parameter 'nmae' (it has: name).")]
    [InlineData(new[] { "run", "hello", "--param", "name" }, "error: 'name' is not a parameter: write --param name=value")]
    public async Task RunWithBadParameters_ExitsTwo_NamingTheProblem(string[] args, string expected)
    {
        var result = await RunAsync(args);

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Output.ShouldBeEmpty();
        result.Error.Trim().ShouldBe(expected);
    }

    [Fact]
    public async Task RunJson_PrintsOneJsonEventPerLine()
    {
        var result = await RunAsync("run", "etl", "--param", "rows=2", "--json");

        result.ExitCode.ShouldBe(0, result.ToString());
        var events = result.Lines.Select(line => JsonNode.Parse(line)!.AsObject()).ToList();
        events.ShouldAllBe(e => (int)e["v"]! == 1 && ((string)e["run"]!).StartsWith("local-", StringComparison.Ordinal));
        events.Select(e => (long)e["seq"]!).ShouldBe(Enumerable.Range(1, events.Count).Select(i => (long)i));
        events.Select(e => (string)e["type"]!).ShouldBe([
            "run_started", "op_started", "progress", "metadata", "op_succeeded",
            "op_started", "op_retrying", "op_started", "op_succeeded", "run_succeeded",
        ]);
        events[0]["parameters"]!.ToJsonString().ShouldBe("""{"rows":2,"limit":100}""");
        events[6]["delay_ms"]!.GetValue<long>().ShouldBe(0);
    }

    [Fact]
    public async Task NoCommand_ExitsTwo_WithUsage()
    {
        var result = await RunAsync();

        result.ExitCode.ShouldBe(2);
        result.Error.ShouldStartWith("error: no command given.");
        result.Error.ShouldContain("usage:");
        result.Error.ShouldContain("run JOB [--param NAME=VALUE]... [--json]");
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("serve")]
    public async Task AnUnknownOrIncompleteCommand_ExitsTwo_WithUsage(params string[] args)
    {
        var result = await RunAsync(args);

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Error.ShouldStartWith($"error: '{string.Join(' ', args)}' is not a command.");
        result.Error.ShouldContain("usage:");
    }

    [Theory]
    [InlineData("run")]
    [InlineData("run", "--json")]
    public async Task Run_WithoutAJobName_ExitsTwo_AndSaysWhatIsMissing(params string[] args)
    {
        var result = await RunAsync(args);

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Error.ShouldStartWith("error: run needs a job name");
        result.Error.ShouldContain("usage:");
    }

    [Fact]
    public async Task Help_PrintsUsage_AndExitsZero()
    {
        var result = await RunAsync("--help");

        result.ExitCode.ShouldBe(0);
        result.Output.ShouldContain("usage:");
        result.Error.ShouldBeEmpty();
    }

    private static async Task<Result> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exitCode = await SkiffApp.RunAsync(args, Define, output, error, new ManualTimeProvider()).WaitAsync(TestRun.Deadline);
        return new Result(exitCode, output.ToString(), error.ToString());
    }

    private static void Define(JobCatalog jobs)
    {
        jobs.Job("hello", "Says hello")
            .Tags("demo")
            .Parameter("name", "world", "Who to greet")
            .Run(context =>
            {
                context.Logger.LogInformation("Hello, {Name}!", context.Parameters.Get<string>("name"));
                return Task.CompletedTask;
            });
        jobs.Job("etl")
            .RequiredParameter<int>("rows")
            .Parameter("limit", 100)
            .Op("extract", context =>
            {
                context.ReportProgress(0.5, "half way");
                context.RecordMetadata("rows", context.Parameters.Get<int>("rows"));
                return Task.FromResult(context.Parameters.Get<int>("rows"));
            })
            .Op("load", context => context.Attempt == 1 ? Task.FromException(new IOException("not yet")) : Task.CompletedTask,
                dependsOn: ["extract"], retry: new RetryPolicy(3, TimeSpan.Zero));
        jobs.Job("broken").Run(_ => throw new InvalidOperationException("disk full"));
    }

    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d{3}  ")]
    private static partial Regex TimePrefix();

    [GeneratedRegex("local-[0-9a-f]{12}")]
    private static partial Regex RunId();
}
