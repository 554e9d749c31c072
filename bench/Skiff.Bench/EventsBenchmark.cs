using Skiff.Testing;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Skiff.Agent;
using Skiff.Agent.Blobs;
using Skiff.Agent.Connection;
using Skiff.Server.Hosting;
using Skiff.Server.Runs;

namespace Skiff.Bench;

/// <summary>
/// A run that logs 50,000 lines (bench/LogLines), on the embedded platform (SQLite, an in-process agent over its
/// real WebSocket), followed the way <c>skiff run --follow</c> follows it: how fast its events are stored and
/// reach the follower, and how long after the run's last event the follower's stream ends. Measured with group
/// commit (<see cref="RunEventWriter.DefaultBatchSize"/> events per transaction) and, side by side, with one
/// transaction per event (batch size 1, as before); and with group commit in a location that hosts its runs in a shared
/// run host (<c>--runs shared</c>), whose process, already started and compiled, runs every run after the first.
/// A job logging as fast as it can outruns any store (50,000 lines in ~0.2 s warm), so the follower's end then measures
/// the backlog; the paced runs (the job logging at <see cref="Pace"/> lines a second, the rate the store must sustain)
/// measure how soon after the run's last event a follower of a store that keeps up ends.
/// </summary>
internal static class EventsBenchmark
{
    private const int Lines = 50_000;

    private const int Pace = 50_000;

    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var project = workspace.CopyProject("bench/LogLines", "repo");
        var batched = await MeasureAsync(workspace, project, RunEventWriter.DefaultBatchSize, iterations, "isolated");
        var shared = await MeasureAsync(workspace, project, RunEventWriter.DefaultBatchSize, iterations, "shared");
        var paced = await MeasureAsync(workspace, project, RunEventWriter.DefaultBatchSize, iterations, "shared", Pace);

        // One transaction per event is slow enough that a few runs tell the story.
        var single = await MeasureAsync(workspace, project, 1, Math.Min(iterations, 3), "isolated");

        Console.WriteLine($"a run logging {Lines:N0} lines, followed over HTTP (ndjson, as skiff run --follow), embedded platform (SQLite, synchronous=FULL), {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}");
        Console.WriteLine();
        Console.WriteLine("| events per transaction | the location's runs | the job logs | runs | events/s stored (median) | follower end after the run's last event, ms (median / max) | job's own time, s (median) | CPU s, server + agent + follower (median) | CPU s, the run's process (median) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        var unpaced = "as fast as it can";
        var atPace = string.Create(CultureInfo.InvariantCulture, $"{Pace:N0} lines/s");
        foreach (var (size, hosting, pace, runs) in new[] { (RunEventWriter.DefaultBatchSize, "isolated", unpaced, batched), (RunEventWriter.DefaultBatchSize, "shared", unpaced, shared), (RunEventWriter.DefaultBatchSize, "shared", atPace, paced), (1, "isolated", unpaced, single) })
        {
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"| {size} | {hosting} | {pace} | {runs.Count} | {Stats.Percentile([.. runs.Select(r => r.EventsPerSecond)], 0.5):N0} | {Stats.Percentile([.. runs.Select(r => r.FollowerLagMs)], 0.5):0} / {runs.Max(r => r.FollowerLagMs):0} | {Stats.Percentile([.. runs.Select(r => r.JobSeconds)], 0.5):0.00} | {Stats.Percentile([.. runs.Select(r => r.Cpu.Own)], 0.5):0.00} | {Stats.Percentile([.. runs.Select(r => r.Cpu.Children)], 0.5):0.00} |"));
        }

        return 0;
    }

    private static async Task<List<Measured>> MeasureAsync(Workspace workspace, string project, int batchSize, int iterations, string runs, int perSecond = 0)
    {
        var root = workspace.PathTo($"batch-{batchSize}-{runs}-{perSecond}");
        await using var server = await SkiffServerHost.StartAsync(
            new ServerOptions { DataDirectory = Path.Combine(root, "server"), Port = 0, EventBatchSize = batchSize },
            TimeProvider.System,
            CancellationToken.None);
        using var blobs = new HttpClient();
        await using var agent = new AgentHost(new AgentOptions { CacheDirectory = Path.Combine(root, "agent") }, new HttpBlobSource(blobs, server.Url, server.Token), TimeProvider.System);
        using var stopping = new CancellationTokenSource();
        var connection = Task.Run(() => new ServerConnection(agent, server.Url, server.Token, "bench", TimeProvider.System).RunAsync(stopping.Token));
        try
        {
            var (_, deployed) = await DeployBenchmark.DeployAsync(Path.Combine(AppContext.BaseDirectory, "skiff.dll"), project, root, server.Url.ToString(), server.Token);
            if ((string?)deployed["outcome"] != "live")
            {
                throw new InvalidOperationException($"the deploy of bench/LogLines was {(string?)deployed["outcome"]}: {(string?)deployed["error"]}");
            }

            using var http = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromMinutes(10) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", server.Token);
            if (runs != "isolated")
            {
                using var set = await http.PatchAsJsonAsync("api/v1/locations/bench", new JsonObject { ["runs"] = runs });
                set.EnsureSuccessStatusCode();
            }
            var measured = new List<Measured>();
            for (var i = 0; i <= iterations; i++)
            {
                var before = CpuTimes.Read();
                var run = await FollowOneRunAsync(http, perSecond);
                run = run with { Cpu = await CpuTimes.SinceAsync(before) };
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"batch {batchSize}, {runs} runs{(perSecond > 0 ? $", paced {perSecond}/s" : "")}, run {i}: {run.EventsPerSecond:N0} events/s, follower end {run.FollowerLagMs:0} ms after the last event, job {run.JobSeconds:0.00} s, CPU s: server+agent+follower {run.Cpu.Own:0.00}, run's process {run.Cpu.Children:0.00}"));
                if (i > 0)
                {
                    measured.Add(run); // the first warms up the code server and the JIT
                }
            }

            return measured;
        }
        finally
        {
            await stopping.CancelAsync();
            await connection;
        }
    }

    /// <summary>
    /// Starts a run and follows it to its end. Events per second: every event, over the time from the first
    /// reaching the follower to the last (each is read from the store, so none is counted before it is stored).
    /// Lag: when the stream ended against the run's end event's own timestamp (same clock, millisecond precision).
    /// </summary>
    private static async Task<Measured> FollowOneRunAsync(HttpClient http, int perSecond)
    {
        using var started = await http.PostAsJsonAsync("api/v1/runs", new JsonObject { ["location"] = "bench", ["job"] = "log_lines", ["params"] = new JsonObject { ["lines"] = Lines, ["per_second"] = perSecond } });
        var body = JsonNode.Parse(await started.Content.ReadAsStringAsync())!;
        var runId = (string?)body["run"] ?? throw new InvalidOperationException($"the run did not start: {body.ToJsonString()}");
        using var response = await http.GetAsync($"api/v1/runs/{runId}/events?follow=true", HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        long count = 0;
        long firstAt = 0;
        string? first = null;
        string? last = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (count++ == 0)
            {
                firstAt = Stopwatch.GetTimestamp();
                first = line;
            }

            last = line;
        }

        var endedAt = DateTimeOffset.UtcNow;
        var lastSeen = Stopwatch.GetElapsedTime(firstAt);
        var end = JsonNode.Parse(last!)!;
        if ((string?)end["type"] != "run_succeeded" || count < Lines || count != (long?)end["seq"])
        {
            throw new InvalidOperationException($"run {runId} streamed {count} events ending with {last}; expected every one of its {Lines:N0} lines, numbered without a gap, ending with run_succeeded");
        }

        var endTs = DateTimeOffset.Parse((string)end["ts"]!, CultureInfo.InvariantCulture);
        var startTs = DateTimeOffset.Parse((string)JsonNode.Parse(first!)!["ts"]!, CultureInfo.InvariantCulture);
        return new Measured(count / lastSeen.TotalSeconds, (endedAt - endTs).TotalMilliseconds, (endTs - startTs).TotalSeconds, default);
    }

    private sealed record Measured(double EventsPerSecond, double FollowerLagMs, double JobSeconds, CpuTimes Cpu);

    /// <summary>
    /// CPU seconds, from /proc/self/stat: this process's own (the server, the agent and the follower, which all run in it)
    /// and its reaped children's (the process that ran the run: one per run, reaped when the run ends). On a machine other
    /// work shares, CPU spent per run moves far less than wall time does.
    /// </summary>
    private readonly record struct CpuTimes(double Own, double Children)
    {
        private const double TicksPerSecond = 100; // USER_HZ, 100 on every Linux the project runs on

        public static CpuTimes Read()
        {
            var stat = File.ReadAllText("/proc/self/stat");
            // The fields after the command's closing parenthesis; utime, stime, cutime, cstime are fields 14 to 17.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            double Field(int number) => double.Parse(fields[number - 3], CultureInfo.InvariantCulture) / TicksPerSecond;
            return new CpuTimes(Field(14) + Field(15), Field(16) + Field(17));
        }

        /// <summary>The CPU spent since <paramref name="before"/>, once the run's process has been reaped (at most 10 s later).</summary>
        public static async Task<CpuTimes> SinceAsync(CpuTimes before)
        {
            var deadline = Stopwatch.StartNew();
            var now = Read();
            while (now.Children == before.Children && deadline.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(50);
                now = Read();
            }

            return new CpuTimes(now.Own - before.Own, now.Children - before.Children);
        }
    }
}
