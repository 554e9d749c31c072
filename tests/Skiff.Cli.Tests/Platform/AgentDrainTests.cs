using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// `skiff agent` told to stop (SIGTERM) while it runs a pool's task (docs/agent.md, "Stopping"): it takes no other task,
/// finishes the one it holds, which is recorded once, and exits 0. What makes a scale-down (KEDA's, or any) safe.
/// Real processes: `skiff up` (server, and the agent the calling run runs on) and a `skiff agent` hosting the pool.
/// </summary>
public sealed class AgentDrainTests : IDisposable
{
    private static readonly TimeSpan Deadline = EmbeddedPlatform.ActivationDeadline;
    private readonly Workspace _workspace = new();

    // A task that says it started (a file named after its task id) and then waits for the test's word (a file "go").
    private const string Tasks = """
            jobs.Task("wait_for_go", async (TaskContext context, string folder) =>
            {
                var go = Path.Combine(folder, "go");
                using var watcher = new FileSystemWatcher(folder, "go") { EnableRaisingEvents = true };
                var given = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                watcher.Created += (_, _) => given.TrySetResult();
                File.WriteAllText(Path.Combine(folder, context.TaskId.Replace(':', '_') + ".started"), context.TaskId);
                if (!File.Exists(go))
                {
                    await given.Task.WaitAsync(context.CancellationToken);
                }

                return "finished " + context.TaskId;
            });

            jobs.Job("call_two", "Calls wait_for_go twice at once")
                .Parameter("folder", "")
                .Run(async context =>
                {
                    var folder = context.Parameters.Get<string>("folder");
                    var results = await Task.WhenAll(
                        context.CallAsync<string, string>("pool", "wait_for_go", folder),
                        context.CallAsync<string, string>("pool", "wait_for_go", folder));
                    context.Logger.LogInformation("results: {Results}", string.Join(", ", results));
                });

            // A small ETL as a DAG
        """;

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task A_worker_agent_stopped_with_sigterm_finishes_its_task_takes_no_other_and_exits_0()
    {
        var project = PlatformFixture.SharedVariant("drain-tasks", text => text.Replace("    // A small ETL as a DAG", Tasks, StringComparison.Ordinal));
        var data = _workspace.PathTo("data");
        var marks = _workspace.PathTo("marks");
        Directory.CreateDirectory(marks);
        // Unsandboxed, so the task sees the test's folder.
        await using var up = RunningProcess.Start("dotnet", [Skiff, "up", "--data", data, "--port", "0", "--json", "--no-sandbox"], _workspace.Root, Home);
        var ready = JsonNode.Parse(await up.WaitForLineAsync(line => line.StartsWith('{'), Deadline))!;
        var url = (string)ready["url"]!;
        var token = (string)JsonNode.Parse(File.ReadAllText((string)ready["client"]!))!["token"]!;
        var client = new Dictionary<string, string>(Home) { ["SKIFF_URL"] = url, ["SKIFF_TOKEN"] = token };
        await using var worker = StartWorker(url, token);
        await WaitForAgentAsync(client, "worker");

        // The pool on the worker only (by its label); the caller on the least loaded agent then, up's own.
        var pool = await SkiffAsync(client, "deploy", project, "--location", "pool", "--on", "role=pool");
        var caller = await SkiffAsync(client, "deploy", project, "--location", "caller");
        pool.ExitCode.ShouldBe(0, pool.ToString());
        caller.ExitCode.ShouldBe(0, caller.ToString());
        var started = await SkiffAsync(client, "run", "caller", "call_two", "--param", $"folder={marks}", "--detach", "--json");
        started.ExitCode.ShouldBe(0, started.ToString());
        var runId = (string)JsonNode.Parse(started.Stdout)!["run"]!;

        // The worker holds one call (prefetch 1); the other waits in the queue. Then it is told to stop.
        var first = await WaitForFileAsync(marks, "*.started");
        await worker.SignalAsync("TERM");
        await worker.WaitForLineAsync(line => line.Contains("stopping: waiting for 1 task(s)", StringComparison.Ordinal), Deadline);
        worker.HasExited.ShouldBeFalse("it waits for the task it holds");
        await File.WriteAllTextAsync(Path.Combine(marks, "go"), "go");
        var exitCode = await worker.ExitCodeAsync(Deadline);
        var startedWhileStopping = Directory.GetFiles(marks, "*.started");

        // The same agent started again takes the call left in the queue, and the run ends.
        await using var again = StartWorker(url, token);
        var logs = await SkiffAsync(client, "logs", runId, "--follow", "--json");

        exitCode.ShouldBe(0, worker.Output);
        startedWhileStopping.ShouldBe([first], "no other task started on the stopping agent");
        logs.ExitCode.ShouldBe(0, logs.ToString());
        var events = logs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!).ToList();
        ((string?)events[^1]["type"]).ShouldBe("run_succeeded", logs.ToString());
        // Written as the task began, read now that it has long ended.
        var firstTaskId = File.ReadAllText(first);
        var secondTaskId = firstTaskId.EndsWith(":1", StringComparison.Ordinal) ? firstTaskId[..^1] + "2" : firstTaskId[..^1] + "1";
        events.ShouldContain(e => (string?)e["type"] == "log" && ((string?)e["message"] ?? "").StartsWith("results: finished ", StringComparison.Ordinal), logs.ToString());
        var results = (string)events.Single(e => (string?)e["type"] == "log" && ((string?)e["message"] ?? "").StartsWith("results: ", StringComparison.Ordinal))["message"]!;
        results.ShouldContain($"finished {firstTaskId}");
        results.ShouldContain($"finished {secondTaskId}");
        events.Count(e => (string?)e["type"] == "task_succeeded" && (string?)e["task_id"] == firstTaskId).ShouldBe(1, logs.ToString());
        // Recorded once, from its one delivery; the call left in the queue was delivered once too, after the restart.
        var recorded = await TaskResultsAsync(Path.Combine(data, "server", "skiff.db"));
        recorded.ShouldBe(new Dictionary<string, (bool, int)> { [$"{firstTaskId}/1"] = (true, 1), [$"{secondTaskId}/1"] = (true, 1) });
    }

    private SkiffProcesses Cli => new(_workspace);

    private static string Skiff => SkiffProcesses.Skiff;

    private Dictionary<string, string> Home => Cli.Home;

    private RunningProcess StartWorker(string url, string token) => Cli.StartAgent(url, token, "worker", "role=pool");

    private Task<CliProcess.Result> SkiffAsync(Dictionary<string, string> environment, params string[] arguments) => Cli.RunAsync(environment, arguments);

    private Task WaitForAgentAsync(Dictionary<string, string> environment, string name) => Cli.WaitForAgentAsync(environment, name);

    /// <summary>Waits for a file matching <paramref name="pattern"/> to appear in <paramref name="folder"/>; returns its path.</summary>
    private static async Task<string> WaitForFileAsync(string folder, string pattern)
    {
        using var watcher = new FileSystemWatcher(folder, pattern) { EnableRaisingEvents = true };
        var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.Created += (_, _) => created.TrySetResult();
        if (Directory.GetFiles(folder, pattern).Length == 0)
        {
            await created.Task.WaitAsync(Deadline);
        }

        return Directory.GetFiles(folder, pattern).Single();
    }

    /// <summary>The pool's recorded task results, by queue id: whether each succeeded and after how many deliveries.</summary>
    private static async Task<Dictionary<string, (bool, int)>> TaskResultsAsync(string database)
    {
        await using var connection = new SqliteConnection($"Data Source={database};Mode=ReadOnly");
        await connection.OpenAsync();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT task_id, succeeded, deliveries FROM task_results WHERE pool = 'pool';";
        await using var reader = await command.ExecuteReaderAsync();
        var results = new Dictionary<string, (bool, int)>();
        while (await reader.ReadAsync())
        {
            results[reader.GetString(0)] = (reader.GetInt64(1) != 0, reader.GetInt32(2));
        }

        return results;
    }
}
