using System.Diagnostics;
using Skiff.Agent.CodeServers;

namespace Skiff.Bench;

/// <summary>
/// A program that defines 1,000 jobs, started as a code server: time from process start to hello, and
/// from hello to the full definitions list received by the agent-side client.
/// </summary>
internal static class ListBenchmark
{
    public static async Task<int> RunAsync(int iterations)
    {
        var program = Path.Combine(Path.GetDirectoryName(typeof(ListBenchmark).Assembly.Location)!, "../../../../ManyJobs/bin",
            new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "ManyJobs.dll");
        program = Path.GetFullPath(program);
        var launch = new CodeServerLaunch("dotnet", [program], Path.GetDirectoryName(program)!) { Name = "ManyJobs" };

        var startup = new List<double>();
        var list = new List<double>();
        for (var i = 0; i < iterations + 1; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await using var server = await CodeServerProcess.StartAsync(launch, TimeSpan.FromSeconds(60), CancellationToken.None);
            var ready = Stopwatch.GetTimestamp();
            var jobs = (await server.ListAsync(CancellationToken.None)).Jobs;
            var listed = Stopwatch.GetTimestamp();
            if (jobs.Count != 1000)
            {
                throw new InvalidOperationException($"expected 1000 jobs, got {jobs.Count}");
            }

            await server.ShutdownAsync(TimeSpan.Zero, CancellationToken.None);
            if (i == 0)
            {
                continue; // warm-up: first start pays for disk cache misses
            }

            startup.Add(Stopwatch.GetElapsedTime(started, ready).TotalMilliseconds);
            list.Add(Stopwatch.GetElapsedTime(ready, listed).TotalMilliseconds);
        }

        Console.WriteLine($"code server with 1,000 jobs, {iterations} starts, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}");
        Console.WriteLine();
        Console.WriteLine(Stats.Header);
        Console.WriteLine(Stats.Row("process start → hello", startup));
        Console.WriteLine(Stats.Row("list request → 1,000 definitions", list));
        return 0;
    }
}
