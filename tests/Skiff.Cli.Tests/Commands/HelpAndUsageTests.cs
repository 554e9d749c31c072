using System.Globalization;
using System.Text.Json.Nodes;
using Skiff.Cli.Commands;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Commands;

/// <summary>What `--help` and a mistyped command line say, as a newcomer reads them.</summary>
public sealed class HelpAndUsageTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task The_command_list_shows_optional_arguments_in_brackets_and_no_defaults_after_descriptions()
    {
        var help = await SkiffAsync("--help");

        help.ExitCode.ShouldBe(0, help.ToString());
        var rows = help.Stdout.Split('\n').Select(l => l.Trim()).ToList();
        rows.ShouldContain(r => r.StartsWith("deploy [<path>] ", StringComparison.Ordinal));
        rows.ShouldContain(r => r.StartsWith("build [<path>] ", StringComparison.Ordinal));
        rows.ShouldContain(r => r.StartsWith("runs [<location>] ", StringComparison.Ordinal));
        rows.ShouldContain(r => r.StartsWith("rollback <location> [<deployment>] ", StringComparison.Ordinal));
        rows.ShouldContain(r => r.StartsWith("exec <release> [<args>...] ", StringComparison.Ordinal));
        rows.ShouldContain(r => r.StartsWith("jobs <location> ", StringComparison.Ordinal));
        help.Stdout.ShouldNotContain("[default: .]");
    }

    [Fact]
    public async Task Store_has_one_default_that_follows_SKIFF_HOME_and_required_is_said_once()
    {
        var home = _workspace.PathTo("elsewhere");

        var deploy = await InHomeAsync("deploy", "--help");
        var exec = await InHomeAsync("exec", "--help");

        foreach (var help in new[] { deploy, exec })
        {
            help.ExitCode.ShouldBe(0, help.ToString());
            var store = help.Stdout.Split('\n').Single(l => l.TrimStart().StartsWith("--store", StringComparison.Ordinal));
            store.Split("default", StringSplitOptions.None).Length.ShouldBe(2, store);
            store.ShouldContain($"[default: {Path.Combine(home, "store")}]");
        }

        deploy.Stdout.Split("required", StringSplitOptions.None).Length.ShouldBe(2, "one option is required and it is said once");
        deploy.Stdout.ShouldContain("--location <location> (required)");
        deploy.Stdout.ShouldContain("skiff deploy [<path>] [options]");

        Task<CliProcess.Result> InHomeAsync(params string[] arguments) => CliProcess.RunSkiffAsync(_workspace.Root, home, arguments);
    }

    [Theory]
    [InlineData("deploy", "Option '--location' is required.")]
    [InlineData("delpoy", "'delpoy'")]
    [InlineData("run analytics", "Required argument missing")]
    [InlineData("history analytics --limit lots", "lots")]
    [InlineData("server --host localhost --port 0", "'localhost' is not an IP address")]
    [InlineData("deploy . --location x --replicas abc", "--replicas: 'abc' is not a number of replicas")]
    [InlineData("agent --server http://127.0.0.1:9 --cpus-per-location abc", "--cpus-per-location must be a positive number of CPUs, such as 1 or 0.5; got 'abc'.")]
    [InlineData("deploy . --location x --on gpu", "'gpu' has no value: write gpu=VALUE")]
    [InlineData("server --port 0 --agent-grace 0s", "'0s' is not a duration between 1 ms and 1 day")]
    [InlineData("server --port 0 --scrub-rate fast", "--scrub-rate: 'fast' is not a rate")]
    [InlineData("up --port 0 --pool-idle 0s", "--pool-idle: '0s' is not a duration between 1 ms and 1 day")]
    [InlineData("up --port 0 --drain-idle soon", "--drain-idle: 'soon' is not a duration between 1 ms and 1 day")]
    public async Task A_usage_error_is_one_line_and_exit_2(string commandLine, string said)
    {
        var result = await SkiffAsync(commandLine.Split(' '));

        result.ExitCode.ShouldBe(2, result.ToString());
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[0].ShouldStartWith("error: ");
        lines[0].ShouldContain(said);
        lines[^1].ShouldStartWith("see `skiff");
        result.Stderr.ShouldNotContain("Usage:", Case.Sensitive, "the error, not the whole help page");
        result.Stdout.ShouldBeEmpty();
    }

    [Fact]
    public async Task Dev_params_without_a_job_to_run_are_a_usage_error_before_anything_is_built()
    {
        var result = await SkiffAsync("dev", _workspace.PathTo("nothing-here"), "--location", "analytics", "--param", "rows=3");

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Stderr.ShouldContain("--param gives parameters to the job that --run starts");
    }

    [Fact]
    public async Task A_parameter_without_a_value_is_a_usage_error_before_any_server_is_asked()
    {
        // No server anywhere: the parameter is checked first, so the answer is about the parameter.
        var result = await SkiffAsync("run", "analytics", "etl", "--param", "rows");

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Stderr.ShouldContain("'rows' is not a parameter: write --param NAME=VALUE.");
    }

    [Fact]
    public async Task Run_takes_follow_as_logs_does_and_refuses_it_beside_detach()
    {
        // No server anywhere: --follow alone gets as far as looking for one; with --detach it is a usage error first.
        var follow = await SkiffAsync("run", "analytics", "etl", "--follow", "--server", "http://127.0.0.1:9", "--token", "t");
        var both = await SkiffAsync("run", "analytics", "etl", "--follow", "--detach");

        follow.Stderr.ShouldNotContain("Unrecognized", Case.Insensitive, follow.ToString());
        follow.ExitCode.ShouldBe(1, follow.ToString());
        both.ExitCode.ShouldBe(2, both.ToString());
        both.Stderr.ShouldContain("--follow and --detach ask for opposite things");
    }

    [Fact]
    public void Table_columns_stay_aligned_whatever_the_widest_value()
    {
        string[] healths = ["healthy", "none", "restarting", "unhealthy", "activation_failed"];

        var table = QueryCommands.Table(
            ["LOCATION", "HEALTH", "DEPLOYMENT"],
            [.. healths.Select((h, i) => new[] { $"location-{new string('x', i * 3)}", h, $"d-{i}" })]);

        var lines = table.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        lines.Length.ShouldBe(6);
        lines.Select(l => l.IndexOf(l.Split("  ", StringSplitOptions.RemoveEmptyEntries)[^1].Trim(), StringComparison.Ordinal))
            .Distinct().Count().ShouldBe(1, table);
        lines.Select(l => l.IndexOf(l.Split("  ", StringSplitOptions.RemoveEmptyEntries)[1].Trim(), StringComparison.Ordinal))
            .Distinct().Count().ShouldBe(1, table);
    }

    [Fact]
    public void A_locations_last_report_names_the_release_it_is_about()
    {
        var at = new DateTimeOffset(2026, 11, 30, 7, 21, 23, TimeSpan.Zero);
        var location = new JsonObject
        {
            ["location"] = "pool",
            ["last_report"] = new JsonObject
            {
                ["kind"] = "stopped",
                ["message"] = "drained: no task ran on it for 20 s (replaced by 0dfe7feb9358)",
                ["at"] = at.ToString("O", CultureInfo.InvariantCulture),
                ["release"] = "sha256:a83547593fa6a1a21b6a7f5afb4b420a7fe39bbffda4e84373d46edda022db85",
            },
        };

        QueryCommands.LastReportLine(location).ShouldBe(
            $"pool: stopped at {at.ToLocalTime():yyyy-MM-dd HH:mm:ss}, release a83547593fa6: drained: no task ran on it for 20 s (replaced by 0dfe7feb9358)");

        // A server older than the field sends no release: the line says none.
        location["last_report"]!.AsObject().Remove("release");
        QueryCommands.LastReportLine(location).ShouldStartWith($"pool: stopped at {at.ToLocalTime():yyyy-MM-dd HH:mm:ss}: drained");
    }

    private Task<CliProcess.Result> SkiffAsync(params string[] arguments) =>
        CliProcess.RunSkiffAsync(_workspace.Root, _workspace.PathTo("home"), arguments);
}
