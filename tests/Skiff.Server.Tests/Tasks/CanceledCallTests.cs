using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Server.Tests.Metrics;
using Skiff.Testing;

namespace Skiff.Server.Tests.Tasks;

/// <summary>
/// A call canceled while it is still queued on the embedded queue is settled as canceled at once (docs/tasks.md, "Deployed
/// runs"): it leaves the queue, so it is no work for its pool (a pool at zero is not placed just to settle it). Scripted
/// agents at the protocol's boundary: the pool's agent has left, so no worker takes the call.
/// </summary>
public sealed class CanceledCallTests : IAsyncLifetime
{
    private const string Call = "r-1:mesh:1/1";
    private readonly Workspace _workspace = new();
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0 }, TimeProvider.System, CancellationToken.None);

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task A_call_canceled_while_queued_leaves_the_queue_at_once_settled_as_canceled()
    {
        await using (await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "gpu-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []),
            tasks: new Dictionary<string, JsonArray> { ["meshing"] = [new JsonObject { ["name"] = "reconstruct" }] }))
        {
            await MetricsEndpointTests.DeployAsync(_server, "meshing", await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "meshing", "1.0.0"));
        }

        await using var caller = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "cpu-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []));
        await caller.SendAsync(new AgentCallTask(Call, "r-1:mesh:1", "meshing", "reconstruct", "r-1", "mesh", 1, JsonValue.Create(2)));
        await DealtWithAsync(caller, 1);
        (await _server.Store.CountTasksAsync("meshing", CancellationToken.None)).Ready.ShouldBe(1);

        await caller.SendAsync(new AgentCancelCall(Call));
        await DealtWithAsync(caller, 2);

        (await _server.Store.CountTasksAsync("meshing", CancellationToken.None)).ShouldBe(new Skiff.Core.Queues.PoolTaskCounts(0, 0));
        var result = (await _server.Store.GetTaskResultAsync(Call, CancellationToken.None))!;
        var outcome = JsonNode.Parse(result.Payload!)!;
        ((bool)outcome["succeeded"]!).ShouldBeFalse();
        ((string?)outcome["error"]!["type"]).ShouldBe(typeof(OperationCanceledException).FullName);
        result.Deliveries.ShouldBe(0);
    }

    /// <summary>
    /// Waits until the server has dealt with every message the agent sent before: it reads an agent's messages in order, so
    /// the refusal of a call of no pool, sent after them, comes once they were.
    /// </summary>
    internal static async Task DealtWithAsync(ScriptedAgent agent, int n)
    {
        await agent.SendAsync(new AgentCallTask($"r-9:probe:{n}/1", $"r-9:probe:{n}", "nowhere", "probe", "r-9", "probe", 1));
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while ((await agent.TaskMessages.Reader.ReadAsync(deadline.Token)) is not AgentTaskResult { Code: "refused" } refused || refused.Call != $"r-9:probe:{n}/1")
        {
        }
    }
}

/// <summary>
/// The same on RabbitMQ, whose copy of a call cannot be taken from the middle of its queue: the canceled result is
/// recorded at once, marked as leaving a copy on the broker, which the pool's count leaves out (docs/tasks.md, "Scaling a
/// pool"), so a pool at zero is not placed only for a worker to discard it.
/// </summary>
[Collection(RabbitMqBroker.Collection)]
public sealed class CanceledBrokerCallTests(RabbitMqBroker broker) : IAsyncLifetime
{
    // A pool of this test's own on the shared broker.
    private readonly string _pool = $"m{Guid.NewGuid():N}"[..12];
    private readonly Workspace _workspace = new();
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await SkiffServerHost.StartAsync(
            new ServerOptions
            {
                DataDirectory = _workspace.PathTo("server"),
                Port = 0,
                ScrubBytesPerSecond = 0,
                RabbitMqTasks = new Skiff.Agent.Queues.RabbitMqTaskQueueOptions { Uri = broker.Uri, ManagementUri = broker.ManagementUri },
            },
            TimeProvider.System,
            CancellationToken.None);

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task A_call_canceled_while_it_waits_on_the_broker_is_settled_as_canceled_with_its_copy_marked_as_no_work()
    {
        var call = "r-1:mesh:1/1";
        await using (await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "gpu-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []),
            tasks: new Dictionary<string, JsonArray> { [_pool] = [new JsonObject { ["name"] = "reconstruct" }] }))
        {
            await MetricsEndpointTests.DeployAsync(_server, _pool, await MetricsEndpointTests.ReleaseAsync(_server, _workspace, _pool, "1.0.0"));
        }

        await using var caller = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "cpu-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []));
        await caller.SendAsync(new AgentCallTask(call, "r-1:mesh:1", _pool, "reconstruct", "r-1", "mesh", 1, JsonValue.Create(2)));
        await CanceledCallTests.DealtWithAsync(caller, 1);
        await caller.SendAsync(new AgentCancelCall(call));
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (await _server.Store.GetTaskResultAsync(call, CancellationToken.None) is null)
        {
            await Task.Delay(20, deadline.Token);
        }

        var result = (await _server.Store.GetTaskResultAsync(call, CancellationToken.None))!;
        ((string?)JsonNode.Parse(result.Payload!)!["error"]!["type"]).ShouldBe(typeof(OperationCanceledException).FullName);
        result.Deliveries.ShouldBe(0);
        (await _server.Store.CountBrokerCopiesAsync(_pool, CancellationToken.None)).ShouldBe(1, "its copy waits on the broker, where no worker took it");
    }
}
