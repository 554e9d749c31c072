using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>What job code writes with Console.WriteLine and Console.Error is kept in its run's events, attributed to its op.</summary>
public sealed class JobOutputTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private const string ChattyJob = """
            jobs.Job("chatty", "Writes to the console from two ops")
                .Op("first", context =>
                {
                    Console.WriteLine("first to stdout");
                    Console.Error.WriteLine("first to stderr");
                    return Task.CompletedTask;
                })
                .Op("second", context =>
                {
                    Console.Write("second to stdout, ");
                    Console.WriteLine("in two writes");
                    Console.Error.WriteLine("second to stderr");
                    return Task.CompletedTask;
                }, dependsOn: ["first"]);

            // A small ETL as a DAG
        """;

    [Fact]
    public async Task Console_output_of_two_ops_is_shown_by_logs_attributed_to_each_op_and_still_printed_locally()
    {
        var project = fixture.Variant("chatty", text => text.Replace("    // A small ETL as a DAG", ChattyJob, StringComparison.Ordinal));

        var deployed = await fixture.Platform.SkiffAsync("deploy", project, "--location", "output");
        var run = await fixture.Platform.SkiffAsync("run", "output", "chatty");
        var runs = JsonNode.Parse((await fixture.Platform.SkiffAsync("runs", "output", "--json")).Stdout)!.AsArray();
        var runId = (string)runs[0]!["run"]!;
        var logs = await fixture.Platform.SkiffAsync("logs", runId);
        var json = await fixture.Platform.SkiffAsync("logs", runId, "--json");
        var local = await CliProcess.RunAsync("dotnet", ["run", "--project", project, "--", "run", "chatty"], project);

        deployed.ExitCode.ShouldBe(0, deployed.ToString());
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("first            stdout first to stdout");
        foreach (var expected in (string[])[
                     "first            stdout first to stdout",
                     "first            stderr first to stderr",
                     "second           stdout second to stdout, in two writes",
                     "second           stderr second to stderr"])
        {
            logs.Stdout.ShouldContain(expected, Case.Sensitive, logs.ToString());
            local.Stdout.ShouldContain(expected, Case.Sensitive, local.ToString());
        }

        var output = json.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonNode.Parse(line)!)
            .Where(e => (string?)e["type"] == "output")
            .Select(e => $"{(string?)e["op"]}|{(int?)e["attempt"]}|{(string?)e["stream"]}|{(string?)e["text"]}")
            .ToList();
        output.ShouldBe(["first|1|stdout|first to stdout", "first|1|stderr|first to stderr", "second|1|stdout|second to stdout, in two writes", "second|1|stderr|second to stderr"], ignoreOrder: true);
        local.ExitCode.ShouldBe(0, local.ToString());
    }
}
