using Skiff.Testing;

namespace Skiff.Cli.Tests.Launcher;

/// <summary>
/// The `./skiff` launcher at the repository root: once for real on this checkout (it builds the CLI and runs it), and
/// against a stand-in `dotnet` on PATH for what it says while it builds.
/// </summary>
public sealed class LauncherTests : IDisposable
{
    // Answers the launcher's three uses of dotnet: --info (for the RID), publish -o DIR, and running the result.
    private const string FakeDotnet = """
        #!/usr/bin/env bash
        case "$1" in
          --info) echo " RID:         linux-x64" ;;
          publish)
            while [[ $# -gt 0 ]]; do [[ "$1" == "-o" ]] && out="$2"; shift; done
            mkdir -p "$out" && echo "not really an assembly" >"$out/skiff.dll" ;;
          *) echo "ran $*" ;;
        esac
        """;

    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task The_first_run_says_on_stderr_what_it_builds_and_that_it_takes_a_while_later_runs_say_nothing()
    {
        var root = _workspace.PathTo("checkout");
        Directory.CreateDirectory(Path.Combine(root, "src", "Skiff.Cli"));
        File.Copy(Path.Combine(Workspace.RepositoryRoot, "skiff"), Path.Combine(root, "skiff"));
        File.WriteAllText(Path.Combine(root, "src", "Skiff.Cli", "Program.cs"), "// stand-in");
        foreach (var file in (string[])["Directory.Build.props", "Directory.Packages.props", "global.json"])
        {
            File.WriteAllText(Path.Combine(root, file), "");
        }

        var tools = _workspace.PathTo("tools");
        Directory.CreateDirectory(tools);
        File.WriteAllText(Path.Combine(tools, "dotnet"), FakeDotnet.ReplaceLineEndings("\n") + "\n");
        File.SetUnixFileMode(Path.Combine(tools, "dotnet"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var first = await LauncherAsync(root, tools);
        var second = await LauncherAsync(root, tools);
        File.WriteAllText(Path.Combine(root, "src", "Skiff.Cli", "Added.cs"), "// a new source file");
        var changed = await LauncherAsync(root, tools);

        first.ExitCode.ShouldBe(0, first.ToString());
        first.Stdout.ShouldContain("ran ");
        first.Stdout.ShouldContain("--version");
        first.Stderr.ShouldContain("first run: building the CLI from");
        first.Stderr.ShouldContain("a minute or two");
        second.ExitCode.ShouldBe(0, second.ToString());
        second.Stderr.ShouldBeEmpty();
        changed.Stderr.ShouldContain("sources changed; rebuilding");
        changed.Stdout.ShouldContain("ran ");
    }

    // The real thing, on this checkout: a Release publish with ReadyToRun of the CLI and everything it references. Run
    // alone it is the longest test of the project (minutes of CPU beside the other tests), so it sits in this class and
    // not in BuildAndExecTests: a collection of its own starts first (LongestFirst) instead of holding up a class of
    // quick tests. scripts/test.sh runs the launcher once beside the solution's build, so there this finds the CLI
    // built on a fresh checkout and runs it (and, were that build broken, builds again here and fails with its errors).
    [Fact]
    public async Task Launcher_script_builds_the_cli_and_runs_it()
    {
        // The first run publishes the CLI in Release with ReadyToRun: about two minutes on two quiet CPUs, and it runs
        // beside other tests here, so it gets well more than the usual three: it is a deadline against a hang, not a measure.
        var result = await CliProcess.RunAsync(Path.Combine(Workspace.RepositoryRoot, "skiff"), ["--help"], Workspace.RepositoryRoot, deadline: TimeSpan.FromMinutes(12));

        result.ExitCode.ShouldBe(0, result.ToString());
        result.Stdout.ShouldContain("build");
        result.Stdout.ShouldContain("exec");
    }

    private static Task<CliProcess.Result> LauncherAsync(string root, string tools) =>
        CliProcess.RunAsync(
            "bash",
            [Path.Combine(root, "skiff"), "--version"],
            root,
            environment: new Dictionary<string, string> { ["PATH"] = $"{tools}:{Environment.GetEnvironmentVariable("PATH")}" });
}
