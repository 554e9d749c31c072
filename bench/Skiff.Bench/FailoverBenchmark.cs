using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Bench;

/// <summary>
/// Failover: the agent hosting a location is killed with SIGKILL, and the time until the location is live on the
/// other agent (its placement changes only once that agent reports the release healthy) is measured. A real
/// <c>skiff server</c> (grace period 2 s) and two <c>skiff agent</c> processes; the killed agent is started again
/// after each round, so the location moves back and forth. The figure is grace period + detection + activation:
/// the part Skiff controls is what is left after the grace period, printed on its own.
/// </summary>
internal static class FailoverBenchmark
{
    private static readonly string Skiff = Path.Combine(AppContext.BaseDirectory, "skiff.dll");
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var root = workspace.Root;
        var none = new Dictionary<string, string>();
        var processes = new List<Process>();
        try
        {
            var server = await ScaleOutBenchmark.StartPlatformAsync(processes, ["server", "--data", Path.Combine(root, "server"), "--port", "0", "--json", "--agent-grace", $"{Grace.TotalSeconds}s"], none);
            var url = (string)server["url"]!;
            var token = (await File.ReadAllTextAsync((string)server["token_file"]!)).Trim();
            var agents = new Dictionary<string, Process>(StringComparer.Ordinal);
            Process StartAgent(string name)
            {
                var process = ScaleOutBenchmark.Start(["agent", "--server", url, "--token", token, "--cache", Path.Combine(root, name), "--name", name], none);
                processes.Add(process);
                return agents[name] = process;
            }

            StartAgent("agent-1");
            StartAgent("agent-2");
            using var http = new HttpClient { BaseAddress = new Uri(url + "/") };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            await WaitAsync(async () => (await GetAsync(http, "api/v1/agents")).Count(a => (string?)a!["state"] == "ready") == 2);

            var project = workspace.CopySample("Hello", "repo");
            var (_, deployed) = await DeployBenchmark.DeployAsync(Skiff, project, root, url, token);
            if ((string?)deployed["outcome"] != "live")
            {
                throw new InvalidOperationException($"the deploy failed: {(string?)deployed["error"]}");
            }

            var series = new Dictionary<string, List<double>>();
            for (var i = 0; i < iterations; i++)
            {
                var host = await PlacedOnAsync(http);
                var process = agents[host];
                process.Kill();
                var killed = Stopwatch.GetTimestamp();
                await process.WaitForExitAsync();
                await WaitAsync(async () => await PlacedOnAsync(http) != host);
                var elapsed = Stopwatch.GetElapsedTime(killed).TotalMilliseconds;
                Stats.Add(series, "agent killed → location live on the other agent", elapsed);
                Stats.Add(series, "  of which after the grace period (detection + activation)", elapsed - Grace.TotalMilliseconds);

                StartAgent(host);
                await WaitAsync(async () => (await GetAsync(http, "api/v1/agents")).Count(a => (string?)a!["state"] == "ready") == 2);
            }

            Stats.Print($"failover of samples/Hello: SIGKILL of the agent hosting it → live on the other one (grace period {Grace.TotalSeconds} s), {iterations} rounds, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}", series);
            return 0;
        }
        finally
        {
            foreach (var process in processes)
            {
                ScaleOutBenchmark.Stop(process);
            }
        }
    }

    private static async Task<string> PlacedOnAsync(HttpClient http)
    {
        var location = (await GetAsync(http, "api/v1/locations")).Single(l => (string?)l!["location"] == "bench")!;
        return location["agents"]!.AsArray().Select(a => (string?)a).Single()!;
    }

    private static async Task<JsonArray> GetAsync(HttpClient http, string path) =>
        JsonNode.Parse(await http.GetStringAsync(path))!.AsArray();

    /// <summary>Polls every 20 ms (the resolution of the figure) until the condition holds.</summary>
    private static async Task WaitAsync(Func<Task<bool>> condition)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (!await condition())
        {
            await Task.Delay(20, deadline.Token);
        }
    }
}
