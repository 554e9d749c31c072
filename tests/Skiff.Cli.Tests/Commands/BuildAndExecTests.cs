using System.Text.Json;
using Skiff.Cli.Tests.Platform;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Commands;

/// <summary>`skiff build` and `skiff exec` as a user runs them: real processes, real builds.</summary>
public sealed class BuildAndExecTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    // A console app with no packages: an environment with nothing in it.
    internal const string PlainConsoleProject = """
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <OutputType>Exe</OutputType>
            <TargetFramework>net10.0</TargetFramework>
          </PropertyGroup>
        </Project>
        """;

    private string Home => _workspace.PathTo("home");

    private List<string> StoredBlobs()
    {
        var folder = Path.Combine(Home, "store", "blobs", "sha256");
        return Directory.Exists(folder) ? [.. Directory.EnumerateFiles(folder)] : [];
    }

    [Fact]
    public async Task Build_json_then_exec_runs_the_sample_from_the_store_with_every_package_loaded()
    {
        var project = _workspace.CopySample("Hello");

        var build = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "build", project, "--json");

        build.ExitCode.ShouldBe(0, build.ToString());
        using var json = JsonDocument.Parse(build.Stdout);
        var root = json.RootElement;
        var release = root.GetProperty("release").GetString()!;
        release.ShouldMatch("^sha256:[0-9a-f]{64}$");
        root.GetProperty("framework").GetString().ShouldBe("net10.0");
        root.GetProperty("rid").GetString().ShouldBe(System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier);
        var environment = root.GetProperty("environment");
        environment.GetProperty("digest").GetString()!.ShouldMatch("^sha256:[0-9a-f]{64}$");
        environment.GetProperty("bytes").GetInt64().ShouldBeGreaterThan(100_000);
        environment.GetProperty("locked").GetBoolean().ShouldBeTrue();
        var packages = environment.GetProperty("packages").EnumerateArray()
            .ToDictionary(p => p.GetProperty("id").GetString()!, p => p.GetProperty("version").GetString()!);
        packages.ShouldBe(LockedPackages.Read(project, rid: root.GetProperty("rid").GetString()), ignoreOrder: true);
        packages.Keys.ShouldContain("Microsoft.Data.Sqlite");
        packages.Keys.ShouldContain("Newtonsoft.Json");
        packages.Keys.ShouldContain("Humanizer.Core");
        root.GetProperty("source").GetProperty("bytes").GetInt64().ShouldBeGreaterThan(0);
        var timings = root.GetProperty("timings_ms");
        foreach (var stage in (string[])["restore", "environment", "pack"])
        {
            timings.GetProperty(stage).GetInt64().ShouldBeGreaterThanOrEqualTo(0);
        }

        timings.GetProperty("build").GetInt64().ShouldBeGreaterThan(0);
        timings.GetProperty("total").GetInt64().ShouldBeGreaterThanOrEqualTo(
            timings.GetProperty("restore").GetInt64() + timings.GetProperty("build").GetInt64() + timings.GetProperty("pack").GetInt64());

        // The project folder is gone: whatever runs now comes from the store.
        Directory.Delete(project, recursive: true);
        var run = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "exec", release, "--", "run", "hello", "--param", "name=from the store");

        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("Hello, from the store!");
        run.Stdout.ShouldMatch(@"sqlite 3\.\d+\.\d+ \(native e_sqlite3\)");
        run.Stdout.ShouldContain("(Newtonsoft.Json 13.0.0.0)");
        run.Stdout.ShouldContain("humanizer: Skiff deploys fast");
        run.Stdout.ShouldContain("run succeeded");
        // One folder per distinct package blob: packages without runtime assets share the empty archive.
        var blobs = environment.GetProperty("packages").EnumerateArray().Select(p => p.GetProperty("digest").GetString()![7..]).ToHashSet();
        Directory.EnumerateDirectories(Path.Combine(Home, "cache", "packages")).Select(Path.GetFileName).ShouldBe(blobs, ignoreOrder: true);
    }

    [Fact]
    public async Task Exec_passes_the_exit_code_through_and_accepts_a_short_release_id()
    {
        var project = _workspace.WriteProject(
            "Exits",
            PlainConsoleProject,
            "System.Console.WriteLine(\"exiting with \" + args[0]); return int.Parse(args[0]);");
        var build = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "build", project);
        build.ExitCode.ShouldBe(0, build.ToString());
        var release = build.Stdout.Split('\n').Single(l => l.StartsWith("release ", StringComparison.Ordinal)).Split(' ')[1];

        var run = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "exec", release[7..19], "--", "42");

        run.ExitCode.ShouldBe(42, run.ToString());
        run.Stdout.ShouldContain("exiting with 42");
    }

    [Fact]
    public async Task An_unlocked_project_is_told_once_how_to_lock_it_and_locked_refuses_it_with_exit_1()
    {
        var project = _workspace.WriteProject("Unlocked", PlainConsoleProject, "System.Console.WriteLine(1);");

        var first = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "build", project);
        var second = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "build", project);
        var locked = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "build", project, "--locked");

        first.ExitCode.ShouldBe(0, first.ToString());
        first.Stderr.ShouldContain("has no packages.lock.json, so its environment follows whatever the package registry serves");
        first.Stderr.ShouldContain("<RestorePackagesWithLockFile>true</RestorePackagesWithLockFile>");
        second.ExitCode.ShouldBe(0, second.ToString());
        second.Stderr.ShouldNotContain("packages.lock.json");
        locked.ExitCode.ShouldBe(1, locked.ToString());
        locked.Stderr.ShouldContain("--locked deploys only projects whose packages are locked");
    }

    [Fact]
    public async Task Build_prints_each_stage_with_its_time()
    {
        // Whether another test built it already or not: each stage is printed either way.
        var project = PlatformFixture.SharedHello;

        var build = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "build", project);

        build.ExitCode.ShouldBe(0, build.ToString());
        foreach (var stage in (string[])["restore", "build", "environment", "pack"])
        {
            build.Stdout.ShouldMatch($@"(?m)^{stage}\s+\d+ ms\s+\S");
        }

        build.Stdout.ShouldMatch(@"(?m)^release sha256:[0-9a-f]{64}");
    }

    [Fact]
    public async Task Build_of_a_folder_without_a_project_fails_with_a_clear_message()
    {
        var build = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "build", _workspace.Root);

        build.ExitCode.ShouldNotBe(0);
        build.Stderr.ShouldContain("holds no project file");
    }

    [Fact]
    public async Task Build_with_compile_errors_shows_the_compiler_messages_and_fails()
    {
        var project = _workspace.WriteProject(
            "Broken",
            PlainConsoleProject,
            "int x = \"not a number\";");

        var build = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "build", project);

        build.ExitCode.ShouldNotBe(0);
        build.Stderr.ShouldContain("error CS0029");
        build.Stderr.ShouldContain("nothing was put into the store");
        StoredBlobs().ShouldBeEmpty();
    }

    [Fact]
    public async Task Exec_of_an_unknown_release_fails_with_a_clear_message()
    {
        var run = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "exec", "sha256:" + new string('0', 64));

        run.ExitCode.ShouldNotBe(0);
        run.Stderr.ShouldContain("sha256:0000");
        run.Stderr.ShouldContain("is not in the store");
    }
}
