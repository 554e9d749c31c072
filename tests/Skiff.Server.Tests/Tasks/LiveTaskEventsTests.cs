using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Server.Tests.Metrics;
using Skiff.Testing;

namespace Skiff.Server.Tests.Tasks;

/// <summary>
/// The server relays a running task's events (docs/tasks.md, "Live events"): from the agent its worker handed the task
/// to, on to the agent whose run waits for the call, as they come and before the result; and lets go of events of a
/// call nobody waits for. A scripted agent at the protocol's boundary is both the caller and the pool's worker here.
/// </summary>
public sealed class LiveTaskEventsTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly Workspace _workspace = new();
    private RunningServer _server = null!;
    private ScriptedAgent _agent = null!;

    public async Task InitializeAsync()
    {
        _server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0 }, TimeProvider.System, CancellationToken.None);
        _agent = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "gpu-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []));
        _agent.Tasks["meshing"] = [new JsonObject { ["name"] = "reconstruct" }];
        await MetricsEndpointTests.DeployAsync(_server, "meshing", await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "meshing", "1.0.0"));
    }

    public async Task DisposeAsync()
    {
        await _agent.DisposeAsync();
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task A_pool_moved_off_its_agent_by_a_drain_is_taken_off_only_once_the_task_its_worker_holds_there_is_settled()
    {
        const string Call = "r-9:mesh:1/1";
        await using var other = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "gpu-2", new HostCapacity(2), new AgentLoad(0, 0, 0, []),
            tasks: new Dictionary<string, JsonArray> { ["meshing"] = [new JsonObject { ["name"] = "reconstruct" }] });
        await _agent.SendAsync(new AgentCallTask(Call, "r-9:mesh:1", "meshing", "reconstruct", "r-9", "mesh", 1, JsonValue.Create(2)));
        var run = (AgentRunTask)await NextAsync();

        using var http = MetricsEndpointTests.Http(_server, _server.Token);
        using var drained = await http.PostAsync("api/v1/agents/gpu-1/drain", null);
        var moved = await drained.Content.ReadAsStringAsync();
        drained.IsSuccessStatusCode.ShouldBeTrue(moved);
        moved.ShouldContain("\"to\":[\"gpu-2\"]");
        // Moved, but the task it runs there is not cut off: the pool stays on gpu-1 until that task is settled.
        _agent.Deactivated.ShouldBeEmpty();

        await _agent.SendAsync(new AgentTaskDone(new JsonObject { ["succeeded"] = true, ["output"] = 4 }, Call) { Request = run.Request });
        ((AgentTaskResult)await NextAsync()).Call.ShouldBe(Call);
        await PoolRunsTests.WaitUntilAsync(() => Task.FromResult(_agent.Deactivated.Contains("meshing")), "the pool to be taken off gpu-1");
    }

    [Fact]
    public async Task A_tasks_events_go_to_the_calling_agent_while_it_runs_and_none_after_its_result()
    {
        const string Call = "r-1:mesh:1/1";
        await _agent.SendAsync(new AgentCallTask(Call, "r-1:mesh:1", "meshing", "reconstruct", "r-1", "mesh", 1, JsonValue.Create(2)));
        var run = (AgentRunTask)await NextAsync();
        run.Call.ShouldBe(Call);
        run.Delivery.ShouldBe(1);
        run.RedeliveryReason.ShouldBeNull();

        var sent = new JsonArray(new JsonObject { ["v"] = 1, ["seq"] = 2, ["run"] = "r-1", ["type"] = "log", ["message"] = "meshing", ["worker"] = "gpu-1", ["delivery"] = 1 });
        await _agent.SendAsync(new AgentTaskEvents(Call, sent));
        // Relayed while the task still runs: the task's answer has not been sent.
        var relayed = (AgentTaskEvents)await NextAsync();
        relayed.Call.ShouldBe(Call);
        relayed.Events.ToJsonString().ShouldBe(sent.ToJsonString());

        await _agent.SendAsync(new AgentTaskDone(new JsonObject { ["succeeded"] = true, ["output"] = 4 }, Call) { Request = run.Request });
        var result = (AgentTaskResult)await NextAsync();
        result.Call.ShouldBe(Call);

        // Answered: late events are let go. The server reads an agent's messages in order, so the refusal of a call sent
        // after them comes only once they were dealt with, and nothing came before it.
        await _agent.SendAsync(new AgentTaskEvents(Call, [new JsonObject { ["v"] = 1, ["seq"] = 3, ["run"] = "r-1", ["type"] = "log", ["message"] = "late" }]));
        await _agent.SendAsync(new AgentCallTask("r-1:mesh:2/1", "r-1:mesh:2", "nowhere", "reconstruct", "r-1", "mesh", 1, JsonValue.Create(2)));
        var refused = (AgentTaskResult)await NextAsync();
        refused.Call.ShouldBe("r-1:mesh:2/1");
        refused.Code.ShouldBe("refused");
    }

    [Fact]
    public async Task Events_for_a_call_that_was_not_handed_to_the_agent_sending_them_are_not_relayed()
    {
        // The pool's one worker holds the first call (prefetch 1), so the second is queued and waited for, but runs nowhere.
        await _agent.SendAsync(new AgentCallTask("r-2:mesh:1/1", "r-2:mesh:1", "meshing", "reconstruct", "r-2", "mesh", 1, JsonValue.Create(2)));
        var held = (AgentRunTask)await NextAsync();
        await _agent.SendAsync(new AgentCallTask("r-2:mesh:2/1", "r-2:mesh:2", "meshing", "reconstruct", "r-2", "mesh", 1, JsonValue.Create(2)));
        await _agent.SendAsync(new AgentTaskEvents("r-2:mesh:2/1", [new JsonObject { ["v"] = 1, ["seq"] = 1, ["run"] = "r-2", ["type"] = "log", ["message"] = "not mine to say" }]));
        await _agent.SendAsync(new AgentCallTask("r-2:mesh:3/1", "r-2:mesh:3", "nowhere", "reconstruct", "r-2", "mesh", 1, JsonValue.Create(2)));

        // Dealt with in order: the refusal of the last call comes, and the events sent before it did not.
        var next = await NextAsync();

        next.ShouldBeOfType<AgentTaskResult>().Call.ShouldBe("r-2:mesh:3/1");
        held.Call.ShouldBe("r-2:mesh:1/1");
    }

    [Fact]
    public async Task A_task_delivered_again_after_its_agent_refused_it_says_why_the_first_delivery_ended()
    {
        const string Call = "r-3:mesh:1/1";
        await _agent.SendAsync(new AgentCallTask(Call, "r-3:mesh:1", "meshing", "reconstruct", "r-3", "mesh", 1, JsonValue.Create(2)));
        var first = (AgentRunTask)await NextAsync();
        // A refusal that keeps the worker: the task comes back to it, delivered again.
        await _agent.SendAsync(new AgentErrorReply("wrong_release", "this agent runs release 0f0f0f0f0f0f") { Request = first.Request });

        var second = (AgentRunTask)await NextAsync();

        (second.Call, second.Delivery).ShouldBe((Call, 2));
        second.RedeliveryReason.ShouldBe("the previous delivery failed: agent 'gpu-1' did not run it: this agent runs release 0f0f0f0f0f0f");
        await _agent.SendAsync(new AgentTaskDone(new JsonObject { ["succeeded"] = true, ["output"] = 4 }, Call) { Request = second.Request });
        ((AgentTaskResult)await NextAsync()).Call.ShouldBe(Call);
    }

    private async Task<AgentMessage> NextAsync()
    {
        using var deadline = new CancellationTokenSource(Deadline);
        return await _agent.TaskMessages.Reader.ReadAsync(deadline.Token);
    }
}
