using System.Diagnostics;
using System.Text;

namespace Skiff.Testing;

/// <summary>Runs the real skiff CLI (the skiff.dll built beside the tests) as a child process.</summary>
internal static class CliProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(3);

    public static Task<Result> RunSkiffAsync(string workingDirectory, string skiffHome, params string[] arguments) =>
        RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments], workingDirectory, skiffHome);

    public static async Task<Result> RunAsync(
        string fileName,
        IReadOnlyList<string> arguments,
        string workingDirectory,
        string? skiffHome = null,
        IReadOnlyDictionary<string, string>? environment = null,
        TimeSpan? deadline = null,
        string? standardInput = null)
    {
        var startInfo = StartInfo(fileName, arguments, workingDirectory, environment);
        if (skiffHome is not null)
        {
            startInfo.Environment["SKIFF_HOME"] = skiffHome;
        }

        startInfo.RedirectStandardInput = standardInput is not null;
        using var process = Process.Start(startInfo)!;
        if (standardInput is not null)
        {
            await process.StandardInput.WriteAsync(standardInput);
            process.StandardInput.Close();
        }

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(deadline ?? Deadline);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} did not finish within {deadline ?? Deadline}.\n{stdout}\n{stderr}");
        }

        lock (stdout)
        {
            lock (stderr)
            {
                return new Result(process.ExitCode, stdout.ToString(), stderr.ToString());
            }
        }
    }

    /// <summary>A child process with its output redirected and its environment as given.</summary>
    public static ProcessStartInfo StartInfo(string fileName, IReadOnlyList<string> arguments, string workingDirectory, IReadOnlyDictionary<string, string>? environment)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[key] = value;
        }

        return startInfo;
    }
}
