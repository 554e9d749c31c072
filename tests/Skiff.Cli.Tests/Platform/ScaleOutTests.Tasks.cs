using System.Text.Json.Nodes;

namespace Skiff.Cli.Tests.Platform;

/// <summary>Task calls across two servers: the calling run's agent on one, the pool's agent on the other.</summary>
public sealed partial class ScaleOutTests
{
    [Fact]
    public async Task A_tasks_live_events_reach_a_caller_whose_agent_is_on_the_other_server_while_the_task_runs()
    {
        var (database, metadata) = await NewDatabaseAsync();
        var (_, urlA, token) = await StartServerAsync("server-a", metadata, token: null);
        var (_, urlB, _) = await StartServerAsync("server-b", metadata, token);
        // Each agent knows one server, so each stays where it is put: the caller's on A, the pool's on B.
        Start("agent", "--server", urlA, "--token", token, "--cache", _workspace.PathTo("agent-a"), "--name", "w-a", "--label", "zone=a");
        // Unsandboxed, so the task sees the test's folder.
        Start("agent", "--server", urlB, "--token", token, "--cache", _workspace.PathTo("agent-b"), "--name", "w-b", "--label", "zone=b", "--no-sandbox");
        // The same project as TaskCallTests' (built once when both run in one test process).
        var project = PlatformFixture.SharedVariant("tasks", text => text.Replace("    // A small ETL as a DAG", TaskCallTests.Tasks, StringComparison.Ordinal));
        await BuildAsync(project);
        await WaitUntilAsync(async () => (await AgentsAsync(urlA, token)).Count(a => (string?)a["state"] == "ready") == 2);
        var pool = await SkiffAsync("deploy", project, "--location", "tasks", "--on", "zone=b", "--server", urlB, "--token", token);
        var caller = await SkiffAsync("deploy", project, "--location", "caller", "--on", "zone=a", "--server", urlA, "--token", token);
        pool.ExitCode.ShouldBe(0, pool.ToString());
        caller.ExitCode.ShouldBe(0, caller.ToString());
        var servers = await RowAsync(database, "SELECT (SELECT server FROM agents WHERE name = 'w-a'), (SELECT server FROM agents WHERE name = 'w-b');");
        servers[0].ShouldNotBe(servers[1], "the caller's agent and the pool's agent are on different servers");

        var gate = _workspace.PathTo("chatty-gate");
        Directory.CreateDirectory(gate);
        var started = await SkiffAsync("run", "caller", "call_chatty", "--param", $"folder={gate}", "--detach", "--json", "--server", urlA, "--token", token);
        started.ExitCode.ShouldBe(0, started.ToString());
        var runId = (string)JsonNode.Parse(started.Stdout)!["run"]!;

        // Follows the calling run's stored events; the task waits for "go", written only once they show its first events.
        using var http = new HttpClient { BaseAddress = new Uri(urlA) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        using var deadline = new CancellationTokenSource(Deadline);
        using var response = await http.GetAsync($"api/v1/runs/{runId}/events?follow=true", HttpCompletionOption.ResponseHeadersRead, deadline.Token);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(deadline.Token));
        var events = new List<JsonNode>();
        var arrived = new List<DateTimeOffset>();
        async Task ReadUntilAsync(Func<JsonNode, bool> condition, string what)
        {
            try
            {
                while (await reader.ReadLineAsync(deadline.Token) is { } line)
                {
                    if (line.Length > 0)
                    {
                        events.Add(JsonNode.Parse(line)!);
                        arrived.Add(DateTimeOffset.UtcNow);
                        if (condition(events[^1]))
                        {
                            return;
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
                throw new ShouldAssertException($"{what} did not come within {Deadline.TotalSeconds:0} s; the run's events so far: {string.Join('\n', events.Select(e => e.ToJsonString()))}");
            }

            throw new ShouldAssertException($"the run's events ended before {what}: {string.Join('\n', events.Select(e => e.ToJsonString()))}");
        }

        await ReadUntilAsync(e => (string?)e["message"] == $"first line of {runId}:call_chatty:1", "the task's first log line");
        await ReadUntilAsync(e => (string?)e["type"] == "progress", "the task's progress");
        // Seen while the task still waits for the test: live, not with its result.
        events.ShouldNotContain(e => (string?)e["type"] == "task_succeeded");
        await File.WriteAllTextAsync(Path.Combine(gate, "go"), "go", deadline.Token);
        await ReadUntilAsync(e => (string?)e["type"] is "run_succeeded" or "run_failed" or "run_canceled", "the run's end");

        ((string?)events[^1]["type"]).ShouldBe("run_succeeded", string.Join('\n', events.Select(e => e.ToJsonString())));
        var task = events.Where(e => e["task"] is not null).ToList();
        task.ShouldAllBe(e => (string?)e["op"] == "call_chatty" && (string?)e["pool"] == "tasks" && (string?)e["worker"] == "w-b" && (int?)e["delivery"] == 1);
        // Each once and in the task's order, with no gap noted: what came live is not emitted again with the result.
        task.Where(e => (string?)e["type"] == "log").Select(e => (string?)e["message"])
            .ShouldBe([$"first line of {runId}:call_chatty:1", .. Enumerable.Range(0, 50).Select(i => $"line {i}")]);
        ((string?)task.Single(e => (string?)e["type"] == "output")["text"]).ShouldBe("chatty on stdout");
        events.Select(e => (long)e["seq"]!).ShouldBe([.. Enumerable.Range(1, events.Count).Select(i => (long)i)]);

        // The figure for docs/tasks.md: from a line's time on the worker (B's agent) to its arrival at a follower on A.
        var delays = events.Select((e, i) => (Event: e, Arrived: arrived[i]))
            .Where(e => ((string?)e.Event["message"])?.StartsWith("line ", StringComparison.Ordinal) == true)
            .Select(e => (e.Arrived - (DateTimeOffset)e.Event["ts"]!).TotalMilliseconds).Order().ToList();
        output.WriteLine($"live task log line across servers, worker -> calling run's follower: median {delays[delays.Count / 2]:0.0} ms, max {delays[^1]:0.0} ms over {delays.Count} lines");
    }
}
