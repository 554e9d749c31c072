using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Server.Tests.Metrics;
using Skiff.Testing;

namespace Skiff.Server.Tests.Tasks;

/// <summary>
/// Calls the caller's SDK would have refused, from an agent whose runs do not check them (another SDK): the server refuses
/// each at once, saying why, and queues nothing (docs/tasks.md, "Deployed runs"). Scripted agents at the protocol's
/// boundary: the pool's agent has left, so a call that were queued would stay in the queue to be counted.
/// </summary>
public sealed class RefusedCallTests : IAsyncLifetime
{
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
    public async Task A_pin_that_is_no_release_prefix_or_an_input_over_the_limit_is_refused_and_nothing_is_queued()
    {
        await using (await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "gpu-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []),
            tasks: new Dictionary<string, JsonArray> { ["meshing"] = [new JsonObject { ["name"] = "reconstruct" }] }))
        {
            await MetricsEndpointTests.DeployAsync(_server, "meshing", await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "meshing", "1.0.0"));
        }

        await using var caller = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "cpu-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []));
        // An empty pin is a prefix of every release; upper case never is one (digests are lowercase).
        var empty = await RefusalAsync(caller, new AgentCallTask("r-1:mesh:1/1", "r-1:mesh:1", "meshing", "reconstruct", "r-1", "mesh", 1, JsonValue.Create(2), Pin: ""));
        var upper = await RefusalAsync(caller, new AgentCallTask("r-1:mesh:2/1", "r-1:mesh:2", "meshing", "reconstruct", "r-1", "mesh", 1, JsonValue.Create(2), Pin: "ABCDEF12"));
        // Over 1 MiB: its run_task would be over the code server's frame limit, dropped there unanswered.
        var huge = await RefusalAsync(caller, new AgentCallTask("r-1:mesh:3/1", "r-1:mesh:3", "meshing", "reconstruct", "r-1", "mesh", 1, JsonValue.Create(new string('x', 2 * 1024 * 1024))));

        empty.ShouldContain("'meshing@' does not pin a release: a pin is 6 to 64 lowercase hex digits of the release's digest");
        upper.ShouldContain("'meshing@ABCDEF12' does not pin a release");
        huge.ShouldContain($"its input is {2 * 1024 * 1024 + 2} bytes of JSON, and a deployed task's input can be at most 524288 bytes. Pass a reference instead");
        (await _server.Store.CountTasksAsync("meshing", CancellationToken.None)).ShouldBe(new Skiff.Core.Queues.PoolTaskCounts(0, 0), "nothing was queued");
        foreach (var call in (string[])["r-1:mesh:1/1", "r-1:mesh:2/1", "r-1:mesh:3/1"])
        {
            (await _server.Store.GetTaskResultAsync(call, CancellationToken.None)).ShouldBeNull("nothing was recorded");
        }
    }

    /// <summary>Sends the call and returns the error of the server's answer to it, which must be a refusal.</summary>
    private static async Task<string> RefusalAsync(ScriptedAgent caller, AgentCallTask call)
    {
        await caller.SendAsync(call);
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        try
        {
            while (true)
            {
                if (await caller.TaskMessages.Reader.ReadAsync(deadline.Token) is AgentTaskResult result && result.Call == call.Call)
                {
                    result.Code.ShouldBe("refused", result.Outcome.ToJsonString());
                    return (string?)result.Outcome["error"]?["message"] ?? "";
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new ShouldAssertException($"call {call.Call} was not answered within a minute: it was taken, not refused");
        }
    }
}
