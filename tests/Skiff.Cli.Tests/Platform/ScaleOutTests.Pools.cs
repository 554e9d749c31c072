using System.Globalization;
using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>A pool that scales (`--replicas MIN..MAX`) served by agents of two servers.</summary>
public sealed partial class ScaleOutTests
{
    /// <summary>
    /// "Scaling down never removes a busy worker" (docs/tasks.md, "Scaling a pool"), across servers: the pool's agent is
    /// connected to A, which dies while the agent runs a task; B counts the agent away and takes the pool off it (replicas
    /// count on connected agents only). The agent still runs the task. When A is back and the agent with it, the pool must
    /// not be stopped under that task: it finishes, once, and the calling run (whose agent is on B) succeeds.
    /// </summary>
    [Fact]
    public async Task A_pool_replica_whose_server_died_under_its_task_keeps_running_it_when_it_comes_back_after_the_other_server_took_the_pool_off_it()
    {
        var (database, metadata) = await NewDatabaseAsync();
        var portA = ServerPorts.Free().ToString(CultureInfo.InvariantCulture);
        var (serverA, urlA, token) = await StartServerAsync("server-a", metadata, token: null, "--port", portA);
        var (_, urlB, _) = await StartServerAsync("server-b", metadata, token);
        // The pool's agent knows only A, so it is away while A is, and comes back to A; the caller's agent is on B.
        // Unsandboxed, so the task sees the test's folder.
        Start("agent", "--server", urlA, "--token", token, "--cache", _workspace.PathTo("agent-pool"), "--name", "w-pool", "--label", "role=pool", "--no-sandbox");
        Start("agent", "--server", urlB, "--token", token, "--cache", _workspace.PathTo("agent-caller"), "--name", "w-caller", "--label", "role=caller");
        var project = PlatformFixture.SharedVariant("tasks", text => text.Replace("    // A small ETL as a DAG", TaskCallTests.Tasks, StringComparison.Ordinal));
        await BuildAsync(project);
        await WaitUntilAsync(async () => (await AgentsAsync(urlB, token)).Count(a => (string?)a["state"] == "ready") == 2);
        var pool = await SkiffAsync("deploy", project, "--location", "tasks", "--on", "role=pool", "--replicas", "1..2", "--server", urlA, "--token", token);
        var caller = await SkiffAsync("deploy", project, "--location", "caller", "--on", "role=caller", "--server", urlB, "--token", token);
        pool.ExitCode.ShouldBe(0, pool.ToString());
        caller.ExitCode.ShouldBe(0, caller.ToString());

        var gate = _workspace.PathTo("hold-gate");
        Directory.CreateDirectory(gate);
        var started = await SkiffAsync("run", "caller", "call_hold", "--param", $"folder={gate}", "--detach", "--json", "--server", urlB, "--token", token);
        started.ExitCode.ShouldBe(0, started.ToString());
        var runId = (string)JsonNode.Parse(started.Stdout)!["run"]!;
        await WaitUntilAsync(() => Task.FromResult(File.Exists(Path.Combine(gate, "started"))));

        serverA.Kill();
        await WaitForExitAsync(serverA);
        // Past A's grace period B counts the agent away, and takes the pool off it.
        await WaitUntilAsync(async () => !(await PlacedOnAsync(urlB, token, "tasks")).Contains("w-pool"));
        await StartServerAsync("server-a", metadata, token, "--port", portA);
        // The agent is back (through A) and the pool on it again: by then A has caught the agent up.
        await WaitUntilAsync(async () => (await PlacedOnAsync(urlB, token, "tasks")).Contains("w-pool")
            && (await AgentsAsync(urlB, token)).Any(a => (string?)a["name"] == "w-pool" && (string?)a["state"] == "ready"));
        await File.WriteAllTextAsync(Path.Combine(gate, "go"), "go");
        await WaitUntilAsync(async () => (string?)(await RunAsync(urlB, token, runId))["status"] is "succeeded" or "failed" or "canceled");
        var logs = await SkiffAsync("logs", runId, "--json", "--server", urlB, "--token", token);
        var results = await RowAsync(database, "SELECT count(*)::text FROM task_results;");

        logs.ExitCode.ShouldBe(0, logs.ToString());
        var events = logs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!).ToList();
        var all = string.Join('\n', events.Select(e => e.ToJsonString()));
        ((string?)events[^1]["type"]).ShouldBe("run_succeeded", all);
        // Started once, on the agent it was first handed to, and not cut off there: its one run is the result.
        events.Where(e => (string?)e["type"] == "task_started").ShouldHaveSingleItem(all);
        events.Where(e => e["task"] is not null && e["delivery"] is not null).ShouldAllBe(e => (int?)e["delivery"] == 1, all);
        events.ShouldContain(e => (string?)e["message"] == "result held", all);
        results[0].ShouldBe("1", "one result recorded");
    }
}
