using System.Diagnostics;
using System.Threading.Channels;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Commands;

/// <summary>
/// `skiff exec` runs a release as `dotnet run` runs the project: signals reach the app, its exit code comes
/// back, nothing is left running, and the generic host finds the release's content files.
/// </summary>
public sealed class ExecTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    private string Home => _workspace.PathTo("home");

    // Stops on whichever signal comes first, with an exit code that tells which one its own handler saw.
    private const string SignalApp = """
        using System.Runtime.InteropServices;

        var stop = new TaskCompletionSource<(string Name, int Code)>();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(("SIGTERM", 0)); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(("SIGINT", 21)); });
        using var hangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => { c.Cancel = true; stop.TrySetResult(("SIGHUP", 22)); });
        Console.WriteLine($"ready {Environment.ProcessId}");
        var (name, code) = await stop.Task;
        Console.WriteLine($"stopped by {name}");
        return code;
        """;

    // A generic-host app as `dotnet new worker` makes one: configuration from appsettings.json in the content
    // root, and a clean shutdown on SIGTERM.
    private const string HostedApp = """
        using Microsoft.Extensions.Configuration;
        using Microsoft.Extensions.Hosting;

        var builder = Host.CreateApplicationBuilder(args);
        using var host = builder.Build();
        var lifetime = host.Services.GetService(typeof(IHostApplicationLifetime)) as IHostApplicationLifetime;
        lifetime!.ApplicationStarted.Register(() => Console.WriteLine($"ready {Environment.ProcessId} greeting={builder.Configuration["Greeting"] ?? "(none)"}"));
        lifetime.ApplicationStopped.Register(() => Console.WriteLine("stopped cleanly"));
        await host.RunAsync();
        return 0;
        """;

    private static string ConsoleProject(string items = "") => $"""
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <OutputType>Exe</OutputType>
            <TargetFramework>net10.0</TargetFramework>
            <ImplicitUsings>enable</ImplicitUsings>
          </PropertyGroup>
          <ItemGroup>
            {items}
          </ItemGroup>
        </Project>
        """;

    [Theory]
    [InlineData("TERM", 0)]
    [InlineData("INT", 21)]
    [InlineData("HUP", 22)]
    public async Task A_signal_to_skiff_reaches_the_app_and_its_exit_code_comes_back(string signal, int expectedExitCode)
    {
        var release = await BuildAsync(_workspace.WriteProject("Signals", ConsoleProject(), SignalApp));

        await using var exec = RunningExec.Start(_workspace.Root, Home, release);
        var ready = await exec.WaitForLineAsync("ready ");
        var appProcessId = int.Parse(ready.Split(' ')[1]);

        await exec.SignalAsync(signal);
        var exitCode = await exec.WaitForExitAsync();

        exitCode.ShouldBe(expectedExitCode, exec.ToString());
        exec.Output.ShouldContain($"stopped by SIG{signal}");
        IsRunning(appProcessId).ShouldBeFalse($"the app (pid {appProcessId}) is still running after skiff exited");
    }

    [Fact]
    public async Task A_generic_host_app_reads_its_appsettings_and_shuts_down_cleanly_on_SIGTERM()
    {
        var project = _workspace.WriteProject(
            "Hosted",
            ConsoleProject("""
                <FrameworkReference Include="Microsoft.AspNetCore.App" />
                <None Update="appsettings.json" CopyToOutputDirectory="PreserveNewest" />
                """),
            HostedApp);
        File.WriteAllText(Path.Combine(project, "appsettings.json"), """{ "Greeting": "from appsettings" }""");
        var release = await BuildAsync(project);
        // The caller's working directory holds no appsettings.json: only the release's content files can answer.
        var elsewhere = Directory.CreateDirectory(_workspace.PathTo("elsewhere")).FullName;

        await using var exec = RunningExec.Start(elsewhere, Home, release);
        var ready = await exec.WaitForLineAsync("ready ");
        await exec.SignalAsync("TERM");
        var exitCode = await exec.WaitForExitAsync();

        ready.ShouldEndWith("greeting=from appsettings", customMessage: exec.ToString());
        exitCode.ShouldBe(0, exec.ToString());
        exec.Output.ShouldContain("stopped cleanly");
        IsRunning(int.Parse(ready.Split(' ')[1])).ShouldBeFalse();
    }

    private async Task<string> BuildAsync(string project)
    {
        var build = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "build", project);
        build.ExitCode.ShouldBe(0, build.ToString());
        return build.Stdout.Split('\n').Single(l => l.StartsWith("release ", StringComparison.Ordinal)).Split(' ')[1];
    }

    private static bool IsRunning(int processId)
    {
        try
        {
            using var process = Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>A `skiff exec` process whose output is read line by line while it runs.</summary>
    private sealed class RunningExec : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
        private readonly List<string> _all = [];

        private RunningExec(Process process) => _process = process;

        public string Output
        {
            get
            {
                lock (_all)
                {
                    return string.Join('\n', _all);
                }
            }
        }

        public static RunningExec Start(string workingDirectory, string home, string release)
        {
            var startInfo = new ProcessStartInfo("dotnet")
            {
                WorkingDirectory = workingDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in (string[])[Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "exec", release])
            {
                startInfo.ArgumentList.Add(argument);
            }

            startInfo.Environment["SKIFF_HOME"] = home;
            startInfo.Environment.Remove("DOTNET_CONTENTROOT");
            var exec = new RunningExec(Process.Start(startInfo)!);
            exec._process.OutputDataReceived += (_, e) => exec.Add(e.Data, "");
            exec._process.ErrorDataReceived += (_, e) => exec.Add(e.Data, "stderr: ");
            exec._process.BeginOutputReadLine();
            exec._process.BeginErrorReadLine();
            return exec;
        }

        public async Task<string> WaitForLineAsync(string prefix)
        {
            using var timeout = new CancellationTokenSource(Deadline);
            try
            {
                await foreach (var line in _lines.Reader.ReadAllAsync(timeout.Token))
                {
                    if (line.StartsWith(prefix, StringComparison.Ordinal))
                    {
                        return line;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }

            throw new TimeoutException($"no line starting '{prefix}' within {Deadline}:\n{this}");
        }

        public async Task SignalAsync(string signal)
        {
            var kill = await CliProcess.RunAsync("kill", ["-s", signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], Path.GetTempPath());
            kill.ExitCode.ShouldBe(0, kill.ToString());
        }

        public async Task<int> WaitForExitAsync()
        {
            using var timeout = new CancellationTokenSource(Deadline);
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"skiff exec did not exit within {Deadline} of the signal:\n{this}");
            }

            return _process.ExitCode;
        }

        public override string ToString() => $"--- output of skiff exec\n{Output}";

        public ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.Dispose();
            return ValueTask.CompletedTask;
        }

        private void Add(string? line, string prefix)
        {
            if (line is null)
            {
                return;
            }

            lock (_all)
            {
                _all.Add(prefix + line);
            }

            if (prefix.Length == 0)
            {
                _lines.Writer.TryWrite(line);
            }
        }
    }
}
