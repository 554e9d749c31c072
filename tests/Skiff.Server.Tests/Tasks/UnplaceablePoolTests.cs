using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Server.Tests.Metrics;
using Skiff.Testing;

namespace Skiff.Server.Tests.Tasks;

/// <summary>
/// A call of a pool that scales, is on no agent, and that no connected agent can host (docs/tasks.md, "Scaling a pool"):
/// the calling run is told once why its call waits (the pool's labels, every agent checked), and the server logs it once,
/// not on every pass of the scaler. Scripted agents at the protocol's boundary: the GPU agent the pool was deployed on
/// leaves, and a CPU-only agent calls.
/// </summary>
public sealed class UnplaceablePoolTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly Workspace _workspace = new();
    private readonly CollectingLogs _logs = new();
    private RunningServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await SkiffServerHost.StartAsync(
            new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0, PoolIdlePeriod = TimeSpan.FromMinutes(10), LoggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs)) },
            TimeProvider.System,
            CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task Each_waiting_call_is_told_once_that_no_connected_agent_matches_the_pools_placement_and_the_server_logs_it_once()
    {
        await using (var gpu = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "gpu-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []),
            tasks: new Dictionary<string, JsonArray> { ["meshing"] = [new JsonObject { ["name"] = "reconstruct" }] }, labels: new Dictionary<string, string> { ["gpu"] = "true" }))
        {
            await MetricsEndpointTests.DeployAsync(_server, "meshing", await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "meshing", "1.0.0"), replicas: (0, 1), on: "gpu=true");
        }

        await using var cpu = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "cpu-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []));
        var notes = new List<AgentTaskEvents>();
        // Each call made once the one before it was told: every note after the first comes from a later pass of the scaler.
        foreach (var n in new[] { 1, 2, 3 })
        {
            await cpu.SendAsync(new AgentCallTask($"r-{n}:mesh:1/1", $"r-{n}:mesh:1", "meshing", "reconstruct", $"r-{n}", "mesh", 1, JsonValue.Create(2)));
            while (notes.Count == 0 || notes[^1].Call != $"r-{n}:mesh:1/1")
            {
                notes.Add((await NextAsync(cpu.TaskMessages)).ShouldBeOfType<AgentTaskEvents>());
            }
        }

        notes.Select(n => n.Call).ShouldBe(["r-1:mesh:1/1", "r-2:mesh:1/1", "r-3:mesh:1/1"]);
        var note = notes[0].Events.ShouldHaveSingleItem()!;
        ((long)note["seq"]!, (string?)note["type"], (string?)note["level"], (string?)note["pool"], (string?)note["task"]).ShouldBe((0L, "log", "warn", "meshing", "reconstruct"));
        var message = (string)note["message"]!;
        message.ShouldStartWith("the call waits: no connected agent can host pool 'meshing': 'meshing' needs an agent with gpu=true");
        message.ShouldContain("cpu-1 (");
        message.ShouldContain("It stays queued, and runs once such an agent connects");
        _logs.Lines.Count(l => l.StartsWith("pool meshing has tasks waiting and is on no agent, and no connected agent can host it", StringComparison.Ordinal)).ShouldBe(1, string.Join("\n", _logs.Lines));
        _logs.Lines.Count(l => l.StartsWith("pool meshing has ", StringComparison.Ordinal) && l.Contains("scaling to 1", StringComparison.Ordinal)).ShouldBe(1, string.Join("\n", _logs.Lines));
    }

    private static async Task<T> NextAsync<T>(System.Threading.Channels.Channel<T> channel)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        return await channel.Reader.ReadAsync(deadline.Token);
    }

    /// <summary>The server's log lines, as formatted.</summary>
    internal sealed class CollectingLogs : ILoggerProvider, ILogger
    {
        private readonly List<string> _lines = [];

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines)
            {
                _lines.Add(formatter(state, exception));
            }
        }

        public void Dispose()
        {
        }
    }
}
