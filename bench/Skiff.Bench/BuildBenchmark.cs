using Skiff.Testing;
using System.Diagnostics;
using System.Text.Json;
using Skiff.Build.Environments;
using Skiff.Build.Restore;
using Skiff.Core.Blobs;

namespace Skiff.Bench;

/// <summary>
/// `skiff build` of samples/Hello after a one-line change, compiler and MSBuild servers warm: the CLI
/// as a user runs it (process start included), per stage from its --json timings, plus the environment
/// digest recomputed in process when the restore output did not change.
/// </summary>
internal static class BuildBenchmark
{
    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var root = workspace.Root;
        var project = workspace.CopySample("Hello", "repo");
        var store = Path.Combine(root, "store");
        var skiff = Path.Combine(AppContext.BaseDirectory, "skiff.dll");
        // Warm-up: the first build restores, packs every package and starts the build servers.
        for (var i = 0; i < 3; i++)
        {
            await BuildAsync(skiff, project, store, i);
        }

        var stages = new Dictionary<string, List<double>>();
        for (var i = 0; i < iterations; i++)
        {
            var (wall, timings) = await BuildAsync(skiff, project, store, 100 + i);
            Stats.Add(stages, "cli wall clock (process start → exit)", wall);
            foreach (var (stage, ms) in timings)
            {
                Stats.Add(stages, $"timings_ms.{stage}", ms);
            }
        }

        var digest = new List<double>();
        var index = new PackageBlobIndex(Path.Combine(store, "index", "packages"));
        var packer = new EnvironmentPacker(new FileBlobStore(store), index);
        var projectFile = Path.Combine(project, "Hello.csproj");
        for (var i = 0; i < iterations; i++)
        {
            var started = Stopwatch.GetTimestamp();
            var restore = await RestoreStep.RunAsync(projectFile, System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier, force: false, requireLockFile: false, CancellationToken.None);
            var environment = await packer.PrepareAsync(restore.Closure, "default", CancellationToken.None);
            digest.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (restore.Restored || environment.PackedCount > 0)
            {
                throw new InvalidOperationException("the environment was rebuilt although nothing changed; the measurement would be wrong");
            }
        }

        Console.WriteLine($"skiff build of samples/Hello after a one-line change, {iterations} iterations, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}");
        Console.WriteLine();
        Console.WriteLine(Stats.Header);
        foreach (var (stage, values) in stages)
        {
            Console.WriteLine(Stats.Row(stage, values));
        }

        Console.WriteLine(Stats.Row("environment digest, restore unchanged", digest));
        return 0;
    }

    private static async Task<(double Wall, List<(string Stage, double Ms)> Timings)> BuildAsync(string skiff, string project, string store, int change)
    {
        await File.AppendAllTextAsync(Path.Combine(project, "Program.cs"), $"\nConsole.WriteLine(\"change {change}\");\n");
        var startInfo = new ProcessStartInfo("dotnet", [skiff, "build", project, "--store", store, "--json"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var started = Stopwatch.GetTimestamp();
        using var process = Process.Start(startInfo)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var wall = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"skiff build failed:\n{await stdout}\n{await stderr}");
        }

        using var json = JsonDocument.Parse(await stdout);
        var timings = json.RootElement.GetProperty("timings_ms").EnumerateObject()
            .Select(p => (p.Name, (double)p.Value.GetInt64()))
            .ToList();
        return (wall, timings);
    }

}
