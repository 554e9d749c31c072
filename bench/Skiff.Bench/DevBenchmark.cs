using System.Diagnostics;
using System.Text.Json.Nodes;
using Skiff.Agent;
using Skiff.Agent.Blobs;
using Skiff.Agent.Connection;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Bench;

/// <summary>
/// <c>skiff dev</c> on samples/Hello, embedded platform warm: from a save (a one-line change written to
/// Program.cs) until the dev loop reports the new version live, N saves, with where the time went: the
/// watcher and its quiet period (the wall clock less the deploy's own total), then the deploy's stages.
/// </summary>
internal static class DevBenchmark
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(3);

    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var root = workspace.Root;
        var project = workspace.CopySample("Hello", "repo");
        var program = Path.Combine(project, "Program.cs");
        await using var server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = Path.Combine(root, "server"), Port = 0 }, TimeProvider.System, CancellationToken.None);
        using var http = new HttpClient();
        await using var agent = new AgentHost(new AgentOptions { CacheDirectory = Path.Combine(root, "agent") }, new HttpBlobSource(http, server.Url, server.Token), TimeProvider.System);
        using var stopping = new CancellationTokenSource();
        var connection = Task.Run(() => new ServerConnection(agent, server.Url, server.Token, "bench", TimeProvider.System).RunAsync(stopping.Token));
        await using var dev = RunningProcess.Start(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "dev", project, "--location", "bench", "--json"],
            root,
            new Dictionary<string, string> { ["SKIFF_HOME"] = Path.Combine(root, "home"), ["SKIFF_URL"] = server.Url.ToString(), ["SKIFF_TOKEN"] = server.Token });
        try
        {
            // The first deploy is the full path.
            await NextDeployAsync(dev, 0);
            var stages = new Dictionary<string, List<double>>();
            for (var i = 0; i < iterations + 3; i++)
            {
                var mark = dev.LineCount;
                var saved = Stopwatch.GetTimestamp();
                await File.AppendAllTextAsync(program, $"\n// change {i}\n");
                var result = await NextDeployAsync(dev, mark);
                var wall = Stopwatch.GetElapsedTime(saved).TotalMilliseconds;
                if ((string?)result["outcome"] != "live" || (string?)result["path"] != "fast")
                {
                    throw new InvalidOperationException($"save {i} deployed {(string?)result["path"]}/{(string?)result["outcome"]}: {(string?)result["error"]}");
                }

                if (i < 3)
                {
                    continue; // the compiler server and the agent's caches warm up
                }

                var timings = result["timings_ms"]!.AsObject();
                Stats.Add(stages, "save → live (wall clock)", wall);
                Stats.Add(stages, "watcher + quiet period (wall − total)", wall - (long)timings["total"]!);
                foreach (var (stage, value) in timings)
                {
                    Stats.Add(stages, $"timings_ms.{stage}", (double)(long)value!);
                }
            }

            Stats.Print($"skiff dev on samples/Hello, a one-line change per save (fast path), embedded platform warm, {iterations} saves, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}", stages);

            return 0;
        }
        finally
        {
            await dev.InterruptAsync(TimeSpan.FromSeconds(30));
            await stopping.CancelAsync();
            await connection;
        }
    }

    /// <summary>The next deploy result the dev loop printed (one JSON line per deploy) after line <paramref name="mark"/>.</summary>
    private static async Task<JsonObject> NextDeployAsync(RunningProcess dev, int mark)
    {
        var line = await dev.WaitForLineAsync(l => l.StartsWith("{\"deployment\"", StringComparison.Ordinal), Deadline, mark);
        return (JsonObject)JsonNode.Parse(line)!;
    }
}
