using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Npgsql;
using Skiff.Testing;
using Xunit.Abstractions;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// "Nothing lost" (docs/queues.md) in scale-out: two `skiff server`s on one PostgreSQL and S3, with RabbitMQ as the task
/// queue, and three agents of a pool spread over them. In the middle of the flow one server is killed with SIGKILL (and
/// started again where its agents look for it), RabbitMQ restarts, and a busy pool agent is killed with SIGKILL. Every
/// calling run must succeed, every task's result be recorded once, with the right output.
/// </summary>
[Collection(RabbitMqBroker.Collection)]
public sealed class ScaleOutTaskFlowTests(RabbitMqBroker broker, ITestOutputHelper output) : IAsyncLifetime
{
    private const int Runs = 10;
    private const int CallsPerRun = 100;
    private const int Tasks = Runs * CallsPerRun;
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(4);

    // A pool of this test's own on the shared broker: another test's leftover messages are not this test's tasks.
    private readonly string _pool = $"p{Guid.NewGuid():N}"[..10];
    private readonly Workspace _workspace = new();
    private readonly List<Process> _started = [];
    private readonly Dictionary<string, Process> _agents = new(StringComparer.Ordinal);
    private readonly PostgresServer _postgres = new();
    private string _database = "";
    private string _blobs = "";
    private string _token = "";

    public async Task InitializeAsync()
    {
        await _postgres.InitializeAsync();
        _database = new NpgsqlConnectionStringBuilder(await _postgres.CreateDatabaseAsync()).Database!;
        var s3 = await S3Server.Shared;
        _blobs = $"s3://{await s3.CreateBucketAsync()}/platform?endpoint={s3.Endpoint}";
    }

    public async Task DisposeAsync()
    {
        foreach (var process in _started)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }

            process.Dispose();
        }

        await _postgres.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task Tasks_through_a_pool_on_two_servers_all_complete_each_recorded_once_through_a_server_killed_a_broker_restart_and_a_busy_agent_killed()
    {
        var portA = ServerPorts.Free().ToString(CultureInfo.InvariantCulture);
        var (serverA, urlA) = await StartServerAsync("server-a", "--port", portA);
        var (_, urlB) = await StartServerAsync("server-b");
        // Unsandboxed, so that the calling runs see the gate file in the test's folder.
        StartAgent("caller", "role=caller", urlB, "--no-sandbox");
        StartAgent("pool-1", "role=pool", urlA);
        StartAgent("pool-2", "role=pool", urlB);
        StartAgent("pool-3", "role=pool", $"{urlA},{urlB}");
        using var http = new HttpClient { BaseAddress = new Uri(urlB) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        await TaskFlowTests.WaitUntilAsync(async () => (await GetArrayAsync(http, "api/v1/agents")).Count(a => (string?)a["state"] == "ready") == 4, "four agents ready");
        // TaskFlowTests' program, calling the pool its run is given, once the gate file its run is given exists: every run is
        // posted before any task is called, so the flow cannot be over before the test disrupts it (posting ten runs on a
        // loaded machine took long enough for 841 of the 1,000 tasks to finish first). Its tasks take 100 ms, not 50, for
        // the same reason.
        var gate = _workspace.PathTo("gate");
        var program = TaskFlowTests.Program
            .Replace("""context.CallAsync<int, Squared>("pool", "square", n)""", """context.CallAsync<int, Squared>(context.Parameters.Get<string>("pool"), "square", n)""", StringComparison.Ordinal)
            .Replace(""".Parameter("from", 0)""", """.Parameter("pool", "pool").Parameter("gate", "").Parameter("from", 0)""", StringComparison.Ordinal)
            .Replace("""var from = context.Parameters.Get<int>("from");""", """
                    while (!File.Exists(context.Parameters.Get<string>("gate")))
                    {
                        await Task.Delay(50, context.CancellationToken);
                    }

                    var from = context.Parameters.Get<int>("from");
            """, StringComparison.Ordinal)
            .Replace("n % 100 == 50 ? 1000 : 50", "n % 100 == 50 ? 1000 : 100", StringComparison.Ordinal);
        program.ShouldContain("File.Exists");
        program.ShouldContain("? 1000 : 100");
        var project = PlatformFixture.SharedVariant("task-flow-pools", text => text.Replace("    // A small ETL as a DAG", program, StringComparison.Ordinal)
            + "\npublic sealed record Squared(int N, long Square);\n");
        await DeployAsync(project, urlA, _pool, "--on", "role=pool", "--replicas", "3");
        await DeployAsync(project, urlB, "callers", "--on", "role=caller");

        var runs = new List<string>();
        for (var i = 0; i < Runs; i++)
        {
            using var response = await http.PostAsJsonAsync("api/v1/runs", new JsonObject
            {
                ["location"] = "callers",
                ["job"] = "fan_out",
                ["params"] = new JsonObject { ["pool"] = _pool, ["gate"] = gate, ["from"] = i * CallsPerRun, ["count"] = CallsPerRun },
            });
            var body = await response.Content.ReadAsStringAsync();
            response.IsSuccessStatusCode.ShouldBeTrue(body);
            runs.Add((string)JsonNode.Parse(body)!["run"]!);
        }

        await File.WriteAllTextAsync(gate, "go");
        // Early: a look at the results opens a PostgreSQL connection, slow on a loaded machine, while the flow goes on.
        await WaitForResultsAsync(Tasks / 50);
        var before = await CountAsync();
        serverA.Kill();
        await serverA.WaitForExitAsync();
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f}: server A killed with {before} results in ({await CountAsync()} once it had exited)");
        await StartServerAsync("server-a", "--port", portA);
        await WaitForResultsAsync(Tasks * 2 / 10);
        await broker.StopAsync();
        await broker.StartAsync();
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f}: RabbitMQ restarted, {await CountAsync()} results in");
        await WaitForResultsAsync(Tasks * 4 / 10);
        var killed = await KillBusyWorkerAsync([urlA, urlB]);
        await TaskFlowTests.WaitUntilAsync(async () => (await GetArrayAsync(http, "api/v1/runs?location=callers&limit=100")).All(r => (string?)r["status"] is "succeeded" or "failed" or "canceled"), "every calling run ended");

        var ended = await GetArrayAsync(http, "api/v1/runs?location=callers&limit=100");
        var results = await ResultsAsync();
        output.WriteLine($"killed while busy: {killed}; {results.Count} results, {results.Count(r => r.Deliveries > 1)} redelivered, {results.Sum(r => r.Deliveries - 1)} redeliveries in all");
        ended.Count.ShouldBe(Runs);
        ended.ShouldAllBe(r => (string?)r["status"] == "succeeded", string.Join("\n", ended.Select(r => r.ToJsonString())));
        results.Count.ShouldBe(Tasks, "one result per task, recorded once");
        results.Where(r => !r.Succeeded || r.Output is null).ShouldBeEmpty();
        results.Select(r => (int)r.Output!["n"]!).Order().ShouldBe(Enumerable.Range(0, Tasks));
        results.ShouldAllBe(r => (long)r.Output!["square"]! == (long)(int)r.Output!["n"]! * (int)r.Output!["n"]!);
    }

    private async Task<string> KillBusyWorkerAsync(string[] servers)
    {
        string? busy = null;
        await TaskFlowTests.WaitUntilAsync(
            async () =>
            {
                foreach (var url in servers)
                {
                    using var http = new HttpClient { BaseAddress = new Uri(url) };
                    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _token);
                    busy ??= (await GetArrayAsync(http, "api/v1/agents")).Where(a => ((string?)a["name"])?.StartsWith("pool-", StringComparison.Ordinal) == true && (int?)a["tasks"] > 0)
                        .Select(a => (string?)a["name"]).FirstOrDefault();
                }

                return busy is not null || (await CountAsync() < Tasks ? false : throw new InvalidOperationException("every task completed before a busy worker was found"));
            },
            "a worker running a task");
        var process = _agents[busy!];
        var servers2 = process.StartInfo.ArgumentList[3];
        process.Kill();
        await process.WaitForExitAsync();
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f}: killed {busy} with SIGKILL while it ran a task, {await CountAsync()} results in; starting it again");
        StartAgent(busy!, "role=pool", servers2);
        return busy!;
    }

    private async Task<(Process Server, string Url)> StartServerAsync(string name, params string[] options)
    {
        var data = _workspace.PathTo(name);
        if (_token.Length > 0)
        {
            Directory.CreateDirectory(data);
            File.WriteAllText(Path.Combine(data, "token"), _token);
        }

        string[] port = options.Contains("--port") ? [] : ["--port", "0"];
        var server = Start(["server", "--data", data, .. port, "--metadata", _postgres.Url(_database), "--blobs", _blobs,
            "--task-queue", $"{broker.Uri}?management={Uri.EscapeDataString(broker.ManagementUri.ToString())}", .. options]);
        using var deadline = new CancellationTokenSource(Deadline);
        while (await server.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
        {
            if (line.StartsWith("skiff server listening on ", StringComparison.Ordinal))
            {
                _token = File.ReadAllText(Path.Combine(data, "token")).Trim();
                _ = server.StandardOutput.ReadToEndAsync(CancellationToken.None);
                _ = server.StandardError.ReadToEndAsync(CancellationToken.None);
                return (server, line.Split(' ')[4]);
            }
        }

        throw new InvalidOperationException($"the server ended before it listened: {await server.StandardError.ReadToEndAsync()}");
    }

    private void StartAgent(string name, string label, string servers, params string[] options)
    {
        var agent = Start(["agent", "--server", servers, "--token", _token, "--cache", _workspace.PathTo("agent-" + name), "--name", name, "--label", label, .. options]);
        _ = agent.StandardOutput.ReadToEndAsync(CancellationToken.None);
        _ = agent.StandardError.ReadToEndAsync(CancellationToken.None);
        _agents[name] = agent;
    }

    private Process Start(params string[] arguments)
    {
        var startInfo = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _workspace.Root,
        };
        startInfo.Environment["SKIFF_HOME"] = _workspace.PathTo("home");
        foreach (var (name, value) in S3Server.Credentials)
        {
            startInfo.Environment[name] = value;
        }

        var process = Process.Start(startInfo)!;
        _started.Add(process);
        return process;
    }

    private async Task DeployAsync(string project, string url, string location, params string[] options)
    {
        var deployed = await CliProcess.RunSkiffAsync(_workspace.Root, _workspace.PathTo("home"), ["deploy", project, "--location", location, .. options, "--server", url, "--token", _token]);
        deployed.ExitCode.ShouldBe(0, deployed.ToString());
    }

    private async Task WaitForResultsAsync(int count) =>
        await TaskFlowTests.WaitUntilAsync(async () => await CountAsync() >= count, $"{count} task results");

    private async Task<long> CountAsync()
    {
        await using var connection = new NpgsqlConnection(_postgres.ConnectionString(_database) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM task_results WHERE pool = @pool;", connection);
        command.Parameters.AddWithValue("pool", _pool);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<List<(string Call, bool Succeeded, JsonNode? Output, int Deliveries)>> ResultsAsync()
    {
        await using var connection = new NpgsqlConnection(_postgres.ConnectionString(_database) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT task_id, succeeded, payload, deliveries FROM task_results WHERE pool = @pool;", connection);
        command.Parameters.AddWithValue("pool", _pool);
        await using var reader = await command.ExecuteReaderAsync();
        var results = new List<(string, bool, JsonNode?, int)>();
        while (await reader.ReadAsync())
        {
            var outcome = reader.IsDBNull(2) ? null : JsonNode.Parse(Encoding.UTF8.GetString((byte[])reader[2]));
            results.Add((reader.GetString(0), reader.GetBoolean(1) && (bool?)outcome?["succeeded"] == true, outcome?["output"], reader.GetInt32(3)));
        }

        return results;
    }

    private static async Task<List<JsonNode>> GetArrayAsync(HttpClient http, string path) =>
        [.. JsonNode.Parse(await http.GetStringAsync(path))!.AsArray().OfType<JsonNode>()];
}
