using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Server.Tests.Metrics;
using Skiff.Testing;

namespace Skiff.Server.Tests.Tasks;

/// <summary>
/// A task that ended while its agent's answer could not reach the server (the server was down, or the connection cut) is
/// recorded from that run when the agent sends the outcome it kept after its next hello (docs/tasks.md, "Nothing lost"):
/// the call's caller gets it, the result counts delivery 1, and the task is not handed out to run a second time. A
/// scripted agent at the protocol's boundary is both the caller and the pool's worker, on the embedded queue.
/// </summary>
public sealed class KeptTaskResultsTests : IAsyncLifetime
{
    private const string Call = "r-1:mesh:1/1";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly Workspace _workspace = new();
    private readonly ServerOptions _options;
    private RunningServer _server = null!;

    public KeptTaskResultsTests() => _options = new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0 };

    public async Task InitializeAsync()
    {
        _server = await SkiffServerHost.StartAsync(_options, TimeProvider.System, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task A_task_that_ended_while_the_server_was_down_is_recorded_from_that_run_when_the_agent_is_back()
    {
        var outcome = await RunUntilTheConnectionGoesAsync(async () =>
        {
            // The server stops (its lease on the task stays in the store until it runs out), and starts again on the same data.
            await _server.DisposeAsync();
            _server = await SkiffServerHost.StartAsync(_options, TimeProvider.System, CancellationToken.None);
        });

        await ExpectRecordedFromTheFirstRunAsync(outcome);
    }

    [Fact]
    public async Task A_task_that_ended_while_its_agents_connection_was_cut_is_recorded_from_that_run_and_not_handed_out_again()
    {
        // The server fails the delivery as the connection closes: the task is ready again, for the agent once it is back.
        var outcome = await RunUntilTheConnectionGoesAsync(() => Task.CompletedTask);

        await ExpectRecordedFromTheFirstRunAsync(outcome);
    }

    [Fact]
    public async Task An_agent_of_protocol_3_which_keeps_no_outcome_is_not_sent_task_recorded_and_its_result_still_counts()
    {
        var outcome = await RunUntilTheConnectionGoesAsync(() => Task.CompletedTask);

        // A version-3 agent answers a message it does not know with an error: the server must not send it one.
        await using var agent = await ConnectAsync([new AgentTaskDone(outcome, Call, "meshing", 1), CallMessage()], protocol: 3);

        var result = (await NextAsync(agent.TaskMessages)).ShouldBeOfType<AgentTaskResult>();
        result.Outcome.ToJsonString().ShouldBe(outcome.ToJsonString());
        (await _server.Store.GetTaskResultAsync(Call, CancellationToken.None)).ShouldNotBeNull().Deliveries.ShouldBe(1);
        agent.Recorded.Reader.TryRead(out var told).ShouldBeFalse($"the server told a version-3 agent that {told} was recorded");
    }

    /// <summary>A run calls the task, the pool's worker hands it to the agent, and the agent's connection goes: the task's outcome as the agent kept it.</summary>
    private async Task<JsonObject> RunUntilTheConnectionGoesAsync(Func<Task> meanwhile)
    {
        await using (var agent = await ConnectAsync([]))
        {
            await MetricsEndpointTests.DeployAsync(_server, "meshing", await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "meshing", "1.0.0"));
            await agent.SendAsync(CallMessage());
            var run = (AgentRunTask)await NextAsync(agent.TaskMessages);
            (run.Call, run.Delivery).ShouldBe((Call, 1));
        }

        await meanwhile();
        return new JsonObject
        {
            ["succeeded"] = true,
            ["output"] = 4,
            ["events"] = new JsonArray(new JsonObject { ["v"] = 1, ["seq"] = 1, ["run"] = "r-1", ["type"] = "task_succeeded", ["worker"] = "gpu-1", ["delivery"] = 1 }),
        };
    }

    private async Task ExpectRecordedFromTheFirstRunAsync(JsonObject outcome)
    {
        // Back: the outcome it kept goes first, then the call its run still waits for, as the agent sends them.
        await using var agent = await ConnectAsync([new AgentTaskDone(outcome, Call, "meshing", 1), CallMessage()]);

        (await NextAsync(agent.Recorded)).ShouldBe(Call);
        // The first task message is the call's result: the task was not handed out to run again.
        var result = (await NextAsync(agent.TaskMessages)).ShouldBeOfType<AgentTaskResult>();
        result.Call.ShouldBe(Call);
        result.Code.ShouldBeNull();
        result.Outcome.ToJsonString().ShouldBe(outcome.ToJsonString());
        var recorded = (await _server.Store.GetTaskResultAsync(Call, CancellationToken.None)).ShouldNotBeNull();
        recorded.Deliveries.ShouldBe(1);
        (await _server.Store.HasTaskAsync(Call, CancellationToken.None)).ShouldBeFalse();
    }

    private Task<ScriptedAgent> ConnectAsync(IReadOnlyList<AgentMessage> afterHello, int protocol = AgentProtocol.Version)
    {
        return ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "gpu-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []), afterHello,
            new Dictionary<string, JsonArray> { ["meshing"] = [new JsonObject { ["name"] = "reconstruct" }] }, protocol: protocol);
    }

    private static AgentCallTask CallMessage() => new(Call, "r-1:mesh:1", "meshing", "reconstruct", "r-1", "mesh", 1, JsonValue.Create(2));

    private static async Task<T> NextAsync<T>(System.Threading.Channels.Channel<T> channel)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        return await channel.Reader.ReadAsync(deadline.Token);
    }
}
