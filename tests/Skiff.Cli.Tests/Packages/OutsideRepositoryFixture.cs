using System.Diagnostics;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Packages;

/// <summary>
/// A team outside this repository, once per test run: the packages from scripts/pack.sh, the skiff tool
/// installed into a tool path, the templates installed into a private hive, a project created with
/// <c>dotnet new skiff-jobs</c>, and <c>skiff up</c> of that installed tool running on a free port.
/// Nothing here uses the repository's sources or build output, only artifacts/packages.
/// </summary>
public sealed class OutsideRepositoryFixture : IAsyncLifetime
{
    // Packing the CLI is a Release build of every project; on 2 busy cores that takes minutes.
    private static readonly TimeSpan PackDeadline = TimeSpan.FromMinutes(15);

    private readonly Workspace _workspace = new();
    private readonly System.Text.StringBuilder _platformErrors = new();
    private Process? _platform;

    public string Version { get; private set; } = "";

    public string Packages => Path.Combine(Workspace.RepositoryRoot, "artifacts", "packages");

    /// <summary>The folder <c>dotnet new skiff-jobs -n MyJobs</c> created (MyJobs.slnx, MyJobs/, MyJobs.Tests/).</summary>
    public string Solution => _workspace.PathTo("MyJobs");

    public string Skiff => _workspace.PathTo("tools", "skiff");

    public string Data => _workspace.PathTo("data");

    public string Root => _workspace.Root;

    public async Task InitializeAsync()
    {
        var pack = await CliProcess.RunAsync("bash", [Path.Combine(Workspace.RepositoryRoot, "scripts", "pack.sh")], Workspace.RepositoryRoot, deadline: PackDeadline);
        pack.ExitCode.ShouldBe(0, pack.ToString());
        Version = pack.Stdout.Trim().Split('\n')[^1];

        // artifacts/packages beside the machine's own sources; NuGet downloads into this workspace, with the
        // machine's global-packages folder as a read-only fallback (as scripts/quickstart.sh does).
        var locals = await CliProcess.RunAsync("dotnet", ["nuget", "locals", "global-packages", "--list"], Root);
        var machinePackages = locals.Stdout.Trim()["global-packages: ".Length..];
        await File.WriteAllTextAsync(_workspace.PathTo("nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{_workspace.PathTo("nuget-packages")}" /></config>
              <packageSources><add key="skiff-local" value="{Packages}" /></packageSources>
              <fallbackPackageFolders><add key="machine" value="{machinePackages}" /></fallbackPackageFolders>
            </configuration>
            """);

        await DotnetAsync("tool", "install", "--tool-path", _workspace.PathTo("tools"), "--add-source", Packages, "skiff", "--version", Version);
        await DotnetAsync("new", "install", Path.Combine(Packages, $"Skiff.Templates.{Version}.nupkg"), "--debug:custom-hive", _workspace.PathTo("hive"));
        await DotnetAsync("new", "skiff-jobs", "-n", "MyJobs", "--debug:custom-hive", _workspace.PathTo("hive"));

        _platform = StartPlatform();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!File.Exists(Path.Combine(Data, "client.json")))
        {
            if (_platform.HasExited)
            {
                throw new InvalidOperationException($"skiff up exited with {_platform.ExitCode}: {PlatformErrors}");
            }

            await Task.Delay(50, deadline.Token);
        }
    }

    /// <summary>The installed tool, as the user runs it, against the platform started by its own <c>skiff up</c>.</summary>
    internal Task<CliProcess.Result> SkiffAsync(params string[] arguments) =>
        CliProcess.RunAsync(Skiff, arguments, Root, skiffHome: Data);

    /// <summary>What skiff up wrote to stderr so far, for failure messages.</summary>
    public string PlatformErrors
    {
        get
        {
            lock (_platformErrors)
            {
                return _platformErrors.ToString();
            }
        }
    }

    internal async Task<CliProcess.Result> DotnetAsync(params string[] arguments)
    {
        var result = await CliProcess.RunAsync("dotnet", arguments, Root);
        result.ExitCode.ShouldBe(0, $"dotnet {string.Join(' ', arguments)}\n{result}");
        return result;
    }

    public async Task DisposeAsync()
    {
        if (_platform is { HasExited: false })
        {
            // As the quickstart does: on SIGTERM skiff up stops its agent, code servers and server, then exits.
            Process.Start("kill", ["-TERM", _platform.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            if (!_platform.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                _platform.Kill(entireProcessTree: true);
            }
        }

        _platform?.Dispose();
        _workspace.Dispose();
    }

    private Process StartPlatform()
    {
        var start = new ProcessStartInfo(Skiff)
        {
            WorkingDirectory = Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["up", "--data", Data, "--port", "0"])
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["SKIFF_HOME"] = Data;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (_platformErrors)
            {
                _platformErrors.AppendLine(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
