using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Skiff.Testing;

namespace Skiff.Bench;

/// <summary>
/// A pool's cold start: a task waits in the queue of a pool that has no worker (its agent drained away on SIGTERM, as a
/// scale-down to zero leaves it), then the pool's agent process is started, as KEDA would start a pod, and the time
/// until the calling run has the result is measured. Beside it, the same call with the pool's agent up (warm). A real
/// <c>skiff server</c>, an agent for the calling run and one for the pool (<c>--label role=pool</c>), all processes.
/// What KEDA adds on top (its polling interval, scheduling and pulling the pod) is not in the figure.
/// </summary>
internal static partial class PoolColdStartBenchmark
{
    private static readonly string Skiff = Path.Combine(AppContext.BaseDirectory, "skiff.dll");
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    private const string Tasks = """
            jobs.Task("double", (TaskContext context, int n) => Task.FromResult(n * 2));
            jobs.Job("call", "Calls the pool's task once").Run(async context => context.Logger.LogInformation("result {Result}", await context.CallAsync<int, int>("pool", "double", 21)));

            // A small ETL as a DAG
        """;

    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var root = workspace.Root;
        var none = new Dictionary<string, string>();
        var processes = new List<Process>();
        try
        {
            var server = await ScaleOutBenchmark.StartPlatformAsync(processes, ["server", "--data", Path.Combine(root, "server"), "--port", "0", "--json"], none);
            var url = (string)server["url"]!;
            var token = (await File.ReadAllTextAsync((string)server["token_file"]!)).Trim();
            processes.Add(ScaleOutBenchmark.Start(["agent", "--server", url, "--token", token, "--cache", Path.Combine(root, "caller"), "--name", "caller"], none));
            Process StartWorker()
            {
                var process = ScaleOutBenchmark.Start(["agent", "--server", url, "--token", token, "--cache", Path.Combine(root, "worker"), "--name", "worker", "--label", "role=pool"], none);
                processes.Add(process);
                return process;
            }

            var worker = StartWorker();
            using var http = new HttpClient { BaseAddress = new Uri(url + "/") };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            await WaitAsync(async () => (await GetAsync(http, "api/v1/agents")).AsArray().Count(a => (string?)a!["state"] == "ready") == 2);

            var project = workspace.CopySample("Hello", "repo");
            var program = Path.Combine(project, "Program.cs");
            await File.WriteAllTextAsync(program, (await File.ReadAllTextAsync(program)).Replace("    // A small ETL as a DAG", Tasks, StringComparison.Ordinal));
            await DeployAsync(root, url, token, project, "pool", "--on", "role=pool");
            await DeployAsync(root, url, token, project, "caller");

            var series = new Dictionary<string, List<double>>();
            for (var i = 0; i < iterations; i++)
            {
                var warm = Stopwatch.GetTimestamp();
                await WaitForRunAsync(http, await StartRunAsync(http));
                Stats.Add(series, "warm: run asked for → run has the result", Stopwatch.GetElapsedTime(warm).TotalMilliseconds);

                // To zero: the pool's only agent drains away.
                Process.Start("kill", ["-TERM", worker.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
                await worker.WaitForExitAsync();
                if (worker.ExitCode != 0)
                {
                    throw new InvalidOperationException($"the pool's agent exited {worker.ExitCode} on SIGTERM");
                }

                var run = await StartRunAsync(http);
                await WaitAsync(async () => ReadyTasks().Match(await http.GetStringAsync("metrics")) is { Success: true } ready && ready.Groups["count"].Value == "1");
                var cold = Stopwatch.GetTimestamp();
                worker = StartWorker();
                await WaitForRunAsync(http, run);
                Stats.Add(series, "cold: task waiting, agent started → result", Stopwatch.GetElapsedTime(cold).TotalMilliseconds);
            }

            Stats.Print($"pool cold start: a task waits for a pool at zero, its agent process starts → the calling run has the result; warm beside it. {iterations} rounds, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}", series);
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

    [GeneratedRegex("""(?m)^skiff_pool_tasks_ready\{pool="pool"\} (?<count>\d+)$""")]
    private static partial Regex ReadyTasks();

    private static async Task DeployAsync(string root, string url, string token, string project, string location, params string[] more)
    {
        var startInfo = new ProcessStartInfo("dotnet", [Skiff, "deploy", project, "--location", location, .. more]) { RedirectStandardOutput = true, RedirectStandardError = true };
        startInfo.Environment["SKIFF_HOME"] = Path.Combine(root, "home");
        startInfo.Environment["SKIFF_URL"] = url;
        startInfo.Environment["SKIFF_TOKEN"] = token;
        using var process = Process.Start(startInfo)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"skiff deploy --location {location} failed:\n{await output}\n{await errors}");
        }
    }

    private static async Task<string> StartRunAsync(HttpClient http)
    {
        using var response = await http.PostAsJsonAsync("api/v1/runs", new JsonObject { ["location"] = "caller", ["job"] = "call" });
        response.EnsureSuccessStatusCode();
        return (string)(await response.Content.ReadFromJsonAsync<JsonObject>())!["run"]!;
    }

    private static async Task WaitForRunAsync(HttpClient http, string run)
    {
        string? status = null;
        await WaitAsync(async () => (status = (string?)(await GetAsync(http, $"api/v1/runs/{run}"))["status"]) is not ("running" or "queued"));
        if (status != "succeeded")
        {
            throw new InvalidOperationException($"run {run} ended {status}");
        }
    }

    private static async Task<JsonNode> GetAsync(HttpClient http, string path) => JsonNode.Parse(await http.GetStringAsync(path))!;

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
