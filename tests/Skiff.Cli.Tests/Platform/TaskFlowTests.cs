using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Skiff.Testing;
using Xunit.Abstractions;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// "Nothing lost" (docs/queues.md): 1,000 task calls flow through a pool of three `skiff agent` processes while a busy
/// worker is killed with SIGKILL twice (and, on RabbitMQ, the broker restarts once). Every calling run must succeed and
/// every task's result be recorded once, with the right output; the redeliveries are written to the test output. The
/// callers run on an agent of their own that is never killed. One real `skiff server` on SQLite, real processes.
/// </summary>
public abstract class TaskFlowTests(ITestOutputHelper output) : IDisposable
{
    protected ITestOutputHelper Output { get; } = output;

    private const int Runs = 10;
    private const int CallsPerRun = 100;
    private const int Tasks = Runs * CallsPerRun;

    // Against a hang, not a measure: the flow takes well under a minute on an idle machine of two cores.
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(4);

    // The pool's task squares its input, taking 50 ms as if it worked, and a whole second for one number in a hundred: with
    // tasks of no length at all the workers are idle nearly always (the calls arrive slower than three workers take them),
    // and a worker busy when it is killed would be rare luck rather than the test's case. The caller's op calls it for its
    // range of numbers at once and checks every answer.
    internal const string Program = """
            jobs.Task("square", async (TaskContext context, int n) =>
            {
                await Task.Delay(n % 100 == 50 ? 1000 : 50, context.CancellationToken);
                return new Squared(n, (long)n * n);
            });

            jobs.Job("fan_out", "Calls square for a range of numbers at once")
                .Parameter("from", 0)
                .Parameter("count", 100)
                .Run(async context =>
                {
                    var from = context.Parameters.Get<int>("from");
                    var results = await Task.WhenAll(Enumerable.Range(from, context.Parameters.Get<int>("count"))
                        .Select(n => context.CallAsync<int, Squared>("pool", "square", n)));
                    for (var i = 0; i < results.Length; i++)
                    {
                        var n = from + i;
                        if (results[i] != new Squared(n, (long)n * n))
                        {
                            throw new InvalidOperationException($"square of {n} came back as {results[i]}");
                        }
                    }

                    context.Logger.LogInformation("all {Count} squares right", results.Length);
                });

            // A small ETL as a DAG
        """;

    private readonly Workspace _workspace = new();
    private readonly List<Process> _started = [];
    private readonly Dictionary<string, Process> _agents = new(StringComparer.Ordinal);
    private Uri _url = null!;
    private string _token = "";

    private string Database => _workspace.PathTo("server", "skiff.db");

    /// <summary>What <c>skiff server</c> is given beyond its data folder and port: the task queue.</summary>
    protected virtual string[] ServerOptions => [];

    /// <summary>Whatever else happens to the queue in the middle of the flow (RabbitMQ: a restart).</summary>
    protected virtual Task DisruptQueueAsync() => Task.CompletedTask;

    public void Dispose()
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

        _workspace.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task A_thousand_tasks_through_three_workers_two_of_them_killed_while_busy_all_complete_each_recorded_once()
    {
        await StartServerAsync();
        StartAgent("caller", "role=caller");
        foreach (var worker in (string[])["pool-1", "pool-2", "pool-3"])
        {
            StartAgent(worker, "role=pool");
        }

        using var http = new HttpClient { BaseAddress = _url };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        await WaitUntilAsync(async () => (await GetArrayAsync(http, "api/v1/agents")).Count(a => (string?)a["state"] == "ready") == 4, "four agents ready");
        var project = PlatformFixture.SharedVariant("task-flow", text => text.Replace("    // A small ETL as a DAG", Program, StringComparison.Ordinal)
            + "\npublic sealed record Squared(int N, long Square);\n");
        await DeployAsync(project, "pool", "--on", "role=pool", "--replicas", "3");
        await DeployAsync(project, "callers", "--on", "role=caller");

        Output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f}: deployed; starting {Runs} runs");
        var flow = Stopwatch.StartNew();
        var runs = new List<string>();
        for (var i = 0; i < Runs; i++)
        {
            using var response = await http.PostAsJsonAsync("api/v1/runs", new JsonObject
            {
                ["location"] = "callers",
                ["job"] = "fan_out",
                ["params"] = new JsonObject { ["from"] = i * CallsPerRun, ["count"] = CallsPerRun },
            });
            var body = await response.Content.ReadAsStringAsync();
            response.IsSuccessStatusCode.ShouldBeTrue(body);
            runs.Add((string)JsonNode.Parse(body)!["run"]!);
        }

        // In the middle of the flow: a busy worker killed, the queue disrupted, another busy worker killed.
        var killed = new List<string>();
        await WaitForResultsAsync(Tasks / 8);
        killed.Add(await KillBusyWorkerAsync(http));
        await WaitForResultsAsync(Tasks * 3 / 8);
        await DisruptQueueAsync();
        await WaitForResultsAsync(Tasks * 5 / 8);
        killed.Add(await KillBusyWorkerAsync(http));
        await WaitUntilAsync(async () => (await GetArrayAsync(http, "api/v1/runs?location=callers&limit=100")).All(r => (string?)r["status"] is "succeeded" or "failed" or "canceled"), "every calling run ended");

        var ended = await GetArrayAsync(http, "api/v1/runs?location=callers&limit=100");
        // What the pool scales on, counted through the queue (on RabbitMQ, its management API).
        var metrics = await http.GetStringAsync("metrics");
        var results = await ResultsAsync();
        var redelivered = results.Where(r => r.Deliveries > 1).ToList();
        Output.WriteLine($"flow of {Runs} runs x {CallsPerRun} calls: {flow.Elapsed.TotalSeconds:0} s; killed while busy: {string.Join(", ", killed)}; {results.Count} results, {redelivered.Count} of them redelivered (delivered more than once), {results.Sum(r => r.Deliveries - 1)} redeliveries in all, at most {results.Max(r => r.Deliveries)} deliveries of one task");
        ended.Count.ShouldBe(Runs);
        ended.ShouldAllBe(r => (string?)r["status"] == "succeeded", string.Join("\n", ended.Select(r => r.ToJsonString())));
        results.Count.ShouldBe(Tasks, "one result per task, recorded once (task_id is the key)");
        results.Select(r => r.Call).Distinct().Count().ShouldBe(Tasks);
        // Each call's id is RUN:fan_out:n/1 (first op attempt): every run's 100 calls, and no op attempted twice.
        results.Select(r => r.Call[..r.Call.IndexOf(':', StringComparison.Ordinal)]).Distinct().Order(StringComparer.Ordinal).ShouldBe(runs.Order(StringComparer.Ordinal));
        results.ShouldAllBe(r => r.Call.EndsWith("/1", StringComparison.Ordinal));
        results.Where(r => !r.Succeeded || r.Output is null).ShouldBeEmpty();
        results.ShouldAllBe(r => (long)r.Output!["square"]! == (long)(int)r.Output!["n"]! * (int)r.Output!["n"]!);
        results.Select(r => (int)r.Output!["n"]!).Order().ShouldBe(Enumerable.Range(0, Tasks));
        metrics.ShouldMatch("""(?m)^skiff_pool_tasks_ready\{pool="pool"\} \d+$""");
        metrics.ShouldMatch("""(?m)^skiff_pool_tasks_in_flight\{pool="pool"\} \d+$""");
    }

    /// <summary>Finds an agent of the pool running a task now, kills it with SIGKILL and starts it again under the same name.</summary>
    private async Task<string> KillBusyWorkerAsync(HttpClient http)
    {
        string? busy = null;
        await WaitUntilAsync(
            async () => (busy = await BusyWorkerAsync(http)) is not null
                || (await ScalarAsync("SELECT count(*) FROM task_results;") < Tasks ? false : throw new InvalidOperationException("every task completed before a busy worker was found")),
            "a worker running a task");
        var process = _agents[busy!];
        process.Kill();
        using (var deadline = new CancellationTokenSource(Deadline))
        {
            await process.WaitForExitAsync(deadline.Token);
        }

        Output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f}: killed {busy} (PID {process.Id}) with SIGKILL while it ran a task, {await ScalarAsync("SELECT count(*) FROM task_results;")} results in; starting it again");
        StartAgent(busy!, "role=pool");
        return busy!;
    }

    /// <summary>
    /// An agent of the pool running one of its tasks now, or null: the server's own count of the tasks its workers have
    /// handed each agent and wait on (<c>tasks</c> in <c>GET /api/v1/agents</c>), the same on either queue.
    /// </summary>
    private static async Task<string?> BusyWorkerAsync(HttpClient http) =>
        (await GetArrayAsync(http, "api/v1/agents"))
            .Where(a => ((string?)a["name"])?.StartsWith("pool-", StringComparison.Ordinal) == true && (int?)a["tasks"] > 0)
            .Select(a => (string?)a["name"])
            .FirstOrDefault();

    private async Task StartServerAsync()
    {
        var data = _workspace.PathTo("server");
        var server = Start(["server", "--data", data, "--port", "0", .. ServerOptions]);
        using var deadline = new CancellationTokenSource(Deadline);
        while (await server.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
        {
            if (line.StartsWith("skiff server listening on ", StringComparison.Ordinal))
            {
                _url = new Uri(line.Split(' ')[4]);
                _token = File.ReadAllText(Path.Combine(data, "token")).Trim();
                // Read on, so a full pipe never blocks it.
                _ = server.StandardOutput.ReadToEndAsync(CancellationToken.None);
                return;
            }
        }

        throw new InvalidOperationException($"the server ended before it listened: {await server.StandardError.ReadToEndAsync()}");
    }

    private void StartAgent(string name, string label)
    {
        var agent = Start("agent", "--server", _url.ToString(), "--token", _token, "--cache", _workspace.PathTo("agent-" + name), "--name", name, "--label", label);
        _ = agent.StandardOutput.ReadToEndAsync(CancellationToken.None);
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
        var process = Process.Start(startInfo)!;
        _started.Add(process);
        if (arguments[0] != "server")
        {
            _ = process.StandardError.ReadToEndAsync(CancellationToken.None);
        }

        return process;
    }

    private async Task DeployAsync(string project, string location, params string[] options)
    {
        var deployed = await CliProcess.RunSkiffAsync(_workspace.Root, _workspace.PathTo("home"), ["deploy", project, "--location", location, .. options, "--server", _url.ToString(), "--token", _token]);
        deployed.ExitCode.ShouldBe(0, deployed.ToString());
    }

    private async Task WaitForResultsAsync(int count) =>
        await WaitUntilAsync(async () => await ScalarAsync("SELECT count(*) FROM task_results;") >= count, $"{count} task results");

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={Database};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<List<(string Call, bool Succeeded, JsonNode? Output, int Deliveries)>> ResultsAsync()
    {
        await using var connection = new SqliteConnection($"Data Source={Database};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT task_id, succeeded, payload, deliveries FROM task_results WHERE pool = 'pool';";
        await using var reader = await command.ExecuteReaderAsync();
        var results = new List<(string, bool, JsonNode?, int)>();
        while (await reader.ReadAsync())
        {
            var outcome = reader.IsDBNull(2) ? null : JsonNode.Parse(Encoding.UTF8.GetString((byte[])reader[2]));
            results.Add((reader.GetString(0), reader.GetInt64(1) == 1 && (bool?)outcome?["succeeded"] == true, outcome?["output"], reader.GetInt32(3)));
        }

        return results;
    }

    private static async Task<List<JsonNode>> GetArrayAsync(HttpClient http, string path) =>
        [.. JsonNode.Parse(await http.GetStringAsync(path))!.AsArray().OfType<JsonNode>()];

    /// <summary>Looks until the condition holds, within the deadline (against a hang).</summary>
    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        try
        {
            while (!await condition())
            {
                // Each look reads the database or the API: looking back to back would keep a core busy.
                await Task.Delay(50, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            throw new TimeoutException($"waited {Deadline} for {what}");
        }
    }
}

/// <summary>The flow on the metadata store's own queue (SQLite): a busy worker is one holding a task's lease.</summary>
public sealed class EmbeddedTaskFlowTests(ITestOutputHelper output) : TaskFlowTests(output)
{
    [Fact]
    public async Task A_task_queue_that_is_no_RabbitMQ_address_or_cannot_be_reached_stops_the_server_saying_so_with_nothing_written()
    {
        using var workspace = new Workspace();
        var data = workspace.PathTo("server");

        var notAnAddress = await CliProcess.RunSkiffAsync(workspace.Root, workspace.PathTo("home"), "server", "--data", data, "--port", "0", "--task-queue", "http://127.0.0.1:5672/");
        var notASetting = await CliProcess.RunAsync(
            "dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "server", "--data", data, "--port", "0"], workspace.Root, workspace.PathTo("home"),
            new Dictionary<string, string> { ["SKIFF_TASK_QUEUE"] = "amqp://skiff:hunter2@127.0.0.1/?prefetch=9" });
        var unreachable = await CliProcess.RunSkiffAsync(workspace.Root, workspace.PathTo("home"), "server", "--data", data, "--port", "0", "--task-queue", "amqp://skiff:hunter2@127.0.0.1:1/");

        notAnAddress.ExitCode.ShouldBe(2, notAnAddress.ToString());
        notAnAddress.Stderr.ShouldContain("--task-queue: expected a RabbitMQ address, amqp://USER:PASSWORD@HOST[:PORT]/");
        notASetting.ExitCode.ShouldBe(2, notASetting.ToString());
        notASetting.Stderr.ShouldContain("error: SKIFF_TASK_QUEUE: 'prefetch' is not a setting of amqp://127.0.0.1:5672; the only one is management.");
        unreachable.ExitCode.ShouldBe(1, unreachable.ToString());
        unreachable.Stderr.ShouldContain("error: the task queue's RabbitMQ at amqp://127.0.0.1:1 cannot be reached (");
        unreachable.Stderr.ShouldContain("Check that the broker runs and that the address, user and password are right");
        (notAnAddress.Stderr + notASetting.Stderr + unreachable.Stderr).ShouldNotContain("hunter2");
        Directory.Exists(data).ShouldBeFalse("nothing is written when the task queue is wrong");
    }
}

/// <summary>The flow on RabbitMQ (`skiff server --task-queue`), which also restarts once in the middle of it.</summary>
[Collection(RabbitMqBroker.Collection)]
public sealed class RabbitMqTaskFlowTests(RabbitMqBroker broker, ITestOutputHelper output) : TaskFlowTests(output)
{
    protected override string[] ServerOptions => ["--task-queue", $"{broker.Uri}?management={Uri.EscapeDataString(broker.ManagementUri.ToString())}"];

    [Fact]
    public async Task A_broker_whose_management_API_cannot_be_used_stops_the_server_saying_where_to_give_it()
    {
        // The broker is there, its management API is not where the URI says (as with the default port 15672 and
        // scripts/rabbitmq.sh, which puts it on a free port): without it no pool is counted, scaled or shown in /metrics.
        using var workspace = new Workspace();
        var data = workspace.PathTo("server");
        var management = new UriBuilder(broker.ManagementUri) { Port = 1 }.Uri;

        var refused = await CliProcess.RunSkiffAsync(
            workspace.Root, workspace.PathTo("home"), "server", "--data", data, "--port", "0", "--task-queue", $"{broker.Uri}?management={Uri.EscapeDataString(management.ToString())}");

        refused.ExitCode.ShouldBe(1, refused.ToString());
        refused.Stderr.ShouldContain($"error: the management API of the task queue's RabbitMQ at http://127.0.0.1:1/ cannot be used (");
        refused.Stderr.ShouldContain("?management=http://USER:PASSWORD@HOST:PORT/");
        Directory.Exists(data).ShouldBeFalse("nothing is written when the task queue is wrong");
    }

    protected override async Task DisruptQueueAsync()
    {
        await broker.StopAsync();
        Output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f}: RabbitMQ stopped");
        await broker.StartAsync();
        Output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f}: RabbitMQ started again");
    }
}
