using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// The GitHub Action's script (.github/actions/deploy/deploy.sh) run as a runner runs it, with the GITHUB_* files
/// and variables set, against an embedded platform and with this repository's CLI.
/// </summary>
public sealed class DeployActionTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private static readonly string Script = Path.Combine(Workspace.RepositoryRoot, ".github", "actions", "deploy", "deploy.sh");

    private EmbeddedPlatform Platform => fixture.Platform;

    [Fact]
    public async Task A_deploy_writes_the_summary_and_the_step_outputs()
    {
        var runner = Runner.Create(fixture.Workspace, "live");

        var result = await runner.RunAsync(Inputs(fixture.Hello, "ci-live"));
        var history = JsonNode.Parse((await Platform.SkiffAsync("history", "ci-live", "--json")).Stdout)!.AsArray();

        result.ExitCode.ShouldBe(0, result.ToString());
        result.Stdout.ShouldNotContain("::error");
        var deployment = history.ShouldHaveSingleItem()!;
        var path = (string)deployment["path"]!;
        var summary = runner.Summary;
        summary.ShouldContain($"### Skiff deploy to ci-live: live ({path} path)");
        summary.ShouldContain($"| path | {path} |");
        summary.ShouldContain($"| release | `{(string?)deployment["release"]}` |");
        summary.ShouldContain($"| deployment | {(string?)deployment["deployment"]} |");
        summary.ShouldContain($"| bytes uploaded | {(long?)deployment["uploaded"]!["bytes"]} ({(int?)deployment["uploaded"]!["blobs"]} blobs) |");
        summary.ShouldContain("| jobs | hello, etl |");
        foreach (var stage in (string[])["restore", "build", "pack", "upload", "activate", "total"])
        {
            // The CLI's own clock (what the summary shows) and the server's record differ by the request's travel.
            System.Text.RegularExpressions.Regex.IsMatch(summary, $@"^\| {stage} \| \d+ \|$", System.Text.RegularExpressions.RegexOptions.Multiline).ShouldBeTrue($"{stage} in\n{summary}");
        }

        runner.Outputs.ShouldContain($"deployment={(string?)deployment["deployment"]}");
        runner.Outputs.ShouldContain($"release={(string?)deployment["release"]}");
        runner.Outputs.ShouldContain($"path={path}");
    }

    [Fact]
    public async Task A_version_that_does_not_go_live_fails_the_step_with_an_annotation_and_a_summary_saying_why()
    {
        var broken = PlatformFixture.BrokenOnPurpose;
        var runner = Runner.Create(fixture.Workspace, "broken");

        var result = await runner.RunAsync(Inputs(broken, "ci-broken"));

        result.ExitCode.ShouldBe(1, result.ToString());
        var annotation = result.Stdout.Split('\n').Where(l => l.StartsWith("::error ", StringComparison.Ordinal)).ShouldHaveSingleItem();
        annotation.ShouldStartWith("::error title=Skiff deploy to ci-broken failed::deployment d-");
        annotation.ShouldContain("did not go live");
        annotation.ShouldContain("broken on purpose");
        runner.Summary.ShouldContain("### Skiff deploy to ci-broken failed");
        runner.Summary.ShouldContain("broken on purpose");
    }

    [Fact]
    public async Task A_build_error_is_annotated_with_what_skiff_said_on_one_line()
    {
        var project = fixture.Workspace.WriteProject("ActionCompileError", Commands.BuildAndExecTests.PlainConsoleProject, "this is not C#");
        var runner = Runner.Create(fixture.Workspace, "compile");

        var result = await runner.RunAsync(Inputs(project, "ci-compile"));

        result.ExitCode.ShouldBe(1, result.ToString());
        var annotation = result.Stdout.Split('\n').Where(l => l.StartsWith("::error ", StringComparison.Ordinal)).ShouldHaveSingleItem();
        annotation.ShouldStartWith("::error title=Skiff deploy to ci-compile failed::error: ");
        annotation.ShouldContain("%0A", Case.Sensitive, "skiff's lines joined the way GitHub's workflow commands escape a newline");
        annotation.ShouldContain("Program.cs");
        runner.Summary.ShouldContain("### Skiff deploy to ci-compile failed");
        runner.Summary.ShouldContain("Program.cs");
    }

    [Theory]
    [InlineData("true")]
    [InlineData("false")]
    public async Task Locked_is_passed_through_and_the_token_goes_by_environment_never_on_the_command_line(string locked)
    {
        var runner = Runner.Create(fixture.Workspace, $"fake-{locked}");
        // A stand-in skiff that records how it was called and answers as `skiff deploy --json` does.
        var calls = runner.PathTo("calls");
        var fake = runner.PathTo("fake-skiff");
        File.WriteAllText(fake, $$"""
            #!/usr/bin/env bash
            printf '%s\n' "$@" >'{{calls}}'
            echo "token=$SKIFF_TOKEN ci=$CI" >>'{{calls}}'
            echo '{"deployment": "d-1", "release": "sha256:{{new string('a', 64)}}", "path": "fast", "outcome": "live", "uploaded": {"blobs": 2, "bytes": 10}, "timings_ms": {"total": 5}, "jobs": []}'
            """.ReplaceLineEndings("\n"));
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var inputs = Inputs("/work/jobs", "ci-fake");
        inputs["SKIFF_LOCKED"] = locked;
        inputs["SKIFF_CLI"] = fake;
        inputs["SKIFF_DEPLOY_TOKEN"] = "skiff_secret";

        var result = await runner.RunAsync(inputs);

        result.ExitCode.ShouldBe(0, result.ToString());
        var lines = File.ReadAllLines(calls);
        lines.ShouldBe(
            ["deploy", "/work/jobs", "--location", "ci-fake", "--server", Platform.Url.ToString(), "--json", .. locked == "true" ? ["--locked"] : Array.Empty<string>(), "token=skiff_secret ci=true"]);
        result.Stdout.ShouldContain("::add-mask::skiff_secret");
    }

    [Fact]
    public async Task A_missing_input_fails_with_exit_2_and_an_annotation_naming_it()
    {
        var runner = Runner.Create(fixture.Workspace, "missing");
        var inputs = Inputs(fixture.Hello, "ci-missing");
        inputs["SKIFF_DEPLOY_TOKEN"] = "";

        var result = await runner.RunAsync(inputs);

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Stdout.ShouldContain("::error title=Skiff deploy to ci-missing failed::the input DEPLOY_TOKEN is empty");
        runner.Summary.ShouldContain("failed");
    }

    private Dictionary<string, string> Inputs(string project, string location) => new()
    {
        ["SKIFF_SERVER"] = Platform.Url.ToString(),
        ["SKIFF_DEPLOY_TOKEN"] = Platform.Token,
        ["SKIFF_LOCATION"] = location,
        ["SKIFF_PROJECT"] = project,
        ["SKIFF_LOCKED"] = "false",
    };

    /// <summary>One runner's files: the summary and outputs files GitHub gives a step, its temp folder, and the CLI to use.</summary>
    private sealed class Runner
    {
        private readonly string _root;

        private Runner(string root) => _root = root;

        public string Summary => File.Exists(PathTo("summary.md")) ? File.ReadAllText(PathTo("summary.md")) : "";

        public string Outputs => File.Exists(PathTo("outputs")) ? File.ReadAllText(PathTo("outputs")) : "";

        public static Runner Create(Workspace workspace, string name)
        {
            var runner = new Runner(workspace.PathTo("runners", name));
            Directory.CreateDirectory(runner.PathTo("temp"));
            // The repository's CLI stands in for the installed tool, so the test need not pack it.
            File.WriteAllText(runner.PathTo("skiff"), $"#!/usr/bin/env bash\nexec dotnet '{Path.Combine(AppContext.BaseDirectory, "skiff.dll")}' \"$@\"\n");
            File.SetUnixFileMode(runner.PathTo("skiff"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return runner;
        }

        public string PathTo(string name) => Path.Combine(_root, name);

        public Task<CliProcess.Result> RunAsync(Dictionary<string, string> inputs)
        {
            var environment = new Dictionary<string, string>
            {
                ["GITHUB_ACTIONS"] = "true",
                ["CI"] = "true",
                ["GITHUB_STEP_SUMMARY"] = PathTo("summary.md"),
                ["GITHUB_OUTPUT"] = PathTo("outputs"),
                ["GITHUB_WORKSPACE"] = _root,
                ["GITHUB_ACTION_PATH"] = Path.GetDirectoryName(Script)!,
                ["RUNNER_TEMP"] = PathTo("temp"),
                ["SKIFF_CLI"] = PathTo("skiff"),
            };
            foreach (var (key, value) in inputs)
            {
                environment[key] = value;
            }

            return CliProcess.RunAsync("bash", [Script], _root, skiffHome: Path.Combine(_root, "home"), environment);
        }
    }
}
