using Skiff.Testing;

namespace Skiff.Cli.Tests.Launcher;

/// <summary>
/// The `./skiff` launcher at the repository root, run against a stand-in `dotnet` on PATH: what it says while it
/// builds is the subject here, not the build (which the other tests cover through the real CLI).
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

    private static Task<CliProcess.Result> LauncherAsync(string root, string tools) =>
        CliProcess.RunAsync(
            "bash",
            [Path.Combine(root, "skiff"), "--version"],
            root,
            environment: new Dictionary<string, string> { ["PATH"] = $"{tools}:{Environment.GetEnvironmentVariable("PATH")}" });
}
