using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Skiff.Core;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Server.Tests.Metrics;
using Skiff.Testing;

namespace Skiff.Server.Tests.Tasks;

/// <summary>
/// A pool's replaced release drained by an agent that never comes back (docs/tasks.md, "Pins"): once the agent is gone past
/// the grace period its drain counts as ended, so a call pinned to that release is refused when it is made, naming the
/// release and why, instead of being queued for nobody and dead-lettered. The grace period runs on a fake clock.
/// </summary>
public sealed class GoneDrainTests : IAsyncLifetime
{
    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);
    private readonly Workspace _workspace = new();
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private readonly Dictionary<string, JsonArray> _tasks = new() { ["pool"] = [new JsonObject { ["name"] = "sleep" }] };
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await SkiffServerHost.StartAsync(
            new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0, AgentGracePeriod = Grace }, _clock, CancellationToken.None);

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task An_agent_given_up_on_has_its_drain_recorded_stopped_and_a_call_pinned_to_it_is_refused_naming_the_release()
    {
        var holder = await ConnectAsync("p1");
        var (replaced, live) = await DeployTwiceAsync();
        await holder.SendAsync(new LocationReport("pool", replaced.ToString(), "Draining", "replaced by the live release", _clock.GetUtcNow()));
        await NewestOnAsync(replaced, "Draining");
        await using var caller = await ConnectAsync("caller");

        await holder.DisposeAsync();
        // Once its disconnect is recorded, the server is counting the grace period down (on the fake clock).
        await PoolRunsTests.WaitUntilAsync(async () => (await _server.Store.ListAgentConnectionsAsync(CancellationToken.None)).All(c => c.Agent != "p1"), "p1's disconnect to be recorded");
        _clock.Advance(Grace + TimeSpan.FromSeconds(1));

        var stopped = await NewestOnAsync(replaced, "Stopped");
        stopped.Agent.ShouldBe("p1");
        stopped.Message.ShouldStartWith("no longer draining: agent 'p1' disconnected at ");
        stopped.Message.ShouldContain("did not come back within 60 s, so the server gave up on it and on its drains");
        var pin = replaced.Hex[..8];
        var refusal = await CallAsync(caller, "r-1:call:1/1", pin);
        refusal.ShouldNotBeNull("the call pinned to the release only a gone agent drained was queued");
        refusal.ShouldContain($"'pool@{pin}' pins a release that pool 'pool' does not run: its live release is {live.Short}, and no replaced release starting with {pin} is draining; "
            + $"release {replaced.Short} stopped on agent 'p1' at ", Case.Sensitive);
        refusal.ShouldContain(stopped.Message, Case.Sensitive);
    }

    [Fact]
    public async Task A_release_whose_only_draining_agent_is_gone_takes_no_pinned_call_even_unrecorded_and_one_another_agent_drains_does()
    {
        await using var agent = await ConnectAsync("p1");
        var (replaced, _) = await DeployTwiceAsync();
        // p0 drained it and went with a server that was killed before giving up on it: nothing recorded its drain ended.
        await _server.Store.RecordAgentAsync("p0", new Dictionary<string, string>(), "{}", CancellationToken.None);
        await _server.Store.AppendLocationHealthAsync(new LocationHealthRecord("pool", "p0", replaced.ToString(), "Draining", "replaced by the live release", _clock.GetUtcNow()), CancellationToken.None);
        _clock.Advance(Grace + TimeSpan.FromSeconds(1));
        var pin = replaced.Hex[..8];

        var refusal = await CallAsync(agent, "r-1:call:1/1", pin);

        refusal.ShouldNotBeNull("the call pinned to the release only a gone agent drains was queued");
        refusal.ShouldContain($"no replaced release starting with {pin} is draining; release {replaced.Short} was draining on agent 'p0', which is gone: agent 'p0' was last seen at ", Case.Sensitive);
        refusal.ShouldContain("longer ago than the grace period (60 s)", Case.Sensitive);
        (await _server.Store.ListLocationHealthAsync("pool", 10, CancellationToken.None))[0].Kind.ShouldBe("Draining", "a call is refused without writing the history");

        // Another agent, connected, drains it too: a pinned call is taken.
        await agent.SendAsync(new LocationReport("pool", replaced.ToString(), "Draining", "replaced by the live release", _clock.GetUtcNow()));
        await NewestOnAsync(replaced, "Draining", by: "p1");
        (await CallAsync(agent, "r-1:call:2/1", pin)).ShouldBeNull();
    }

    private Task<ScriptedAgent> ConnectAsync(string name) =>
        ScriptedAgent.ConnectAsync(_server.Url, _server.Token, name, new HostCapacity(4), new AgentLoad(0, 0, 0, []), tasks: _tasks);

    /// <summary>Deploys two releases of the pool; returns the replaced one and the live one.</summary>
    private async Task<(Digest Replaced, Digest Live)> DeployTwiceAsync()
    {
        var replaced = await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "pool", "1.0.0");
        await MetricsEndpointTests.DeployAsync(_server, "pool", replaced);
        var live = await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "pool", "2.0.0");
        await MetricsEndpointTests.DeployAsync(_server, "pool", live);
        return (replaced, live);
    }

    /// <summary>
    /// Has <paramref name="agent"/>'s run call the pool's task pinned to <paramref name="pin"/>; returns why it was refused, or
    /// null when it was taken. Then a call of a pool that does not exist follows: the server handles an agent's messages in
    /// order, so that one's refusal comes after the pinned call's answer, if it had one.
    /// </summary>
    private async Task<string?> CallAsync(ScriptedAgent agent, string call, string pin)
    {
        await agent.SendAsync(new AgentCallTask(call, call[..^2], "pool", "sleep", "r-1", "call", 1, JsonValue.Create(1), pin));
        await agent.SendAsync(new AgentCallTask(call + ":witness", call[..^2] + ":witness", "nowhere", "sleep", "r-1", "call", 1, JsonValue.Create(1)));
        using var deadline = new CancellationTokenSource(Deadline);
        while (true)
        {
            if (await agent.TaskMessages.Reader.ReadAsync(deadline.Token) is AgentTaskResult result)
            {
                if (result.Call == call)
                {
                    result.Code.ShouldBe("refused");
                    return (string?)result.Outcome["error"]!["message"];
                }

                if (result.Call == call + ":witness")
                {
                    return null;
                }
            }
        }
    }

    private Task<LocationHealthRecord> NewestOnAsync(Digest release, string kind, string? by = null) => Api.LocationHealthTests.NewestOnAsync(_server, release, kind, by);
}
