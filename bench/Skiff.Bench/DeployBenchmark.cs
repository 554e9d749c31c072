using Skiff.Testing;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Skiff.Agent;
using Skiff.Agent.Blobs;
using Skiff.Agent.Connection;
using Skiff.Server.Hosting;

namespace Skiff.Bench;

/// <summary>
/// Fast-path <c>skiff deploy</c> of samples/Hello after a one-line change, embedded platform warm: the CLI
/// as a user runs it, from process start until the new version is live, with its per-stage timings.
/// </summary>
internal static class DeployBenchmark
{
    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var root = workspace.Root;
        var project = workspace.CopySample("Hello", "repo");
        await using var server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = Path.Combine(root, "server"), Port = 0 }, TimeProvider.System, CancellationToken.None);
        using var http = new HttpClient();
        await using var agent = new AgentHost(new AgentOptions { CacheDirectory = Path.Combine(root, "agent") }, new HttpBlobSource(http, server.Url, server.Token), TimeProvider.System);
        using var stopping = new CancellationTokenSource();
        var connection = Task.Run(() => new ServerConnection(agent, server.Url, server.Token, "bench", TimeProvider.System).RunAsync(stopping.Token));
        var skiff = Path.Combine(AppContext.BaseDirectory, "skiff.dll");
        try
        {
            var stages = new Dictionary<string, List<double>>();
            for (var i = 0; i < iterations + 3; i++)
            {
                await File.AppendAllTextAsync(Path.Combine(project, "Program.cs"), $"\n// change {i}\n");
                var (wall, result) = await DeployAsync(skiff, project, root, server);
                if ((string?)result["outcome"] != "live" || (i > 0 && (string?)result["path"] != "fast"))
                {
                    throw new InvalidOperationException($"deploy {i} was {(string?)result["path"]}/{(string?)result["outcome"]}: {(string?)result["error"]}");
                }

                if (i < 3)
                {
                    continue; // the first is the full path; then the build servers and caches warm up
                }

                Stats.Add(stages, "cli wall clock (process start → live)", wall);
                foreach (var (stage, value) in result["timings_ms"]!.AsObject())
                {
                    Stats.Add(stages, $"timings_ms.{stage}", (double)(long)value!);
                }

                Stats.Add(stages, "uploaded bytes (not ms)", (double)(long)result["uploaded"]!["bytes"]!);
            }

            Stats.Print($"skiff deploy of samples/Hello after a one-line change (fast path), embedded platform warm, {iterations} deploys, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}", stages);

            return 0;
        }
        finally
        {
            await stopping.CancelAsync();
            await connection;
        }
    }

    private static Task<(double Wall, JsonObject Result)> DeployAsync(string skiff, string project, string root, RunningServer server) =>
        DeployAsync(skiff, project, root, server.Url.ToString(), server.Token);

    /// <summary>One <c>skiff deploy --json</c> as a user runs it: wall clock from process start, and what it printed.</summary>
    internal static Task<(double Wall, JsonObject Result)> DeployAsync(string skiff, string project, string root, string url, string token) =>
        DeployAsync(skiff, project, root, url, token, "bench", []);

    /// <summary>The same, to <paramref name="location"/> with more arguments (<c>--exp …</c>).</summary>
    internal static async Task<(double Wall, JsonObject Result)> DeployAsync(string skiff, string project, string root, string url, string token, string location, IReadOnlyList<string> arguments)
    {
        var startInfo = new ProcessStartInfo("dotnet", [skiff, "deploy", project, "--location", location, "--json", .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        startInfo.Environment["SKIFF_HOME"] = Path.Combine(root, "home");
        startInfo.Environment["SKIFF_URL"] = url;
        startInfo.Environment["SKIFF_TOKEN"] = token;
        var started = Stopwatch.GetTimestamp();
        using var process = Process.Start(startInfo)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var wall = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return JsonNode.Parse(await stdout) is JsonObject result
            ? (wall, result)
            : throw new InvalidOperationException($"skiff deploy printed no JSON:\n{await stdout}\n{await stderr}");
    }

}
