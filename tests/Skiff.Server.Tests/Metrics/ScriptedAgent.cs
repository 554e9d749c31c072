using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Skiff.Core.Messaging;

namespace Skiff.Server.Tests.Metrics;

/// <summary>
/// An agent at the protocol's boundary (docs/agent-protocol.md), without processes: it connects to a real server over its
/// WebSocket, says hello, activates every release it is sent, and answers a run by sending its events at once (a start,
/// a log line and a success that took <see cref="RunDuration"/>). Enough for a server to deploy and run through it.
/// </summary>
internal sealed class ScriptedAgent : IAsyncDisposable
{
    public static readonly TimeSpan RunDuration = TimeSpan.FromMilliseconds(1500);

    private readonly ClientWebSocket _socket = new();
    private readonly SemaphoreSlim _sending = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task _serving = Task.CompletedTask;
    private Task _catchUp = Task.CompletedTask;

    private ScriptedAgent(string name) => Name = name;

    public string Name { get; }

    /// <summary>Every task-call message the server sent it (<c>run_task</c>, <c>task_events</c>, <c>task_result</c>), in order.</summary>
    public System.Threading.Channels.Channel<AgentMessage> TaskMessages { get; } = System.Threading.Channels.Channel.CreateUnbounded<AgentMessage>();

    /// <summary>The calls whose result the server said it recorded (<c>task_recorded</c>), in order.</summary>
    public System.Threading.Channels.Channel<string> Recorded { get; } = System.Threading.Channels.Channel.CreateUnbounded<string>();

    /// <summary>The tasks it says a location's version serves (as a code server lists them), by location; none for the others.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, JsonArray> Tasks { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// When set, a run it is sent starts and stays running (its start is answered, its <c>run_started</c> sent) until
    /// <see cref="EndRunAsync"/>; otherwise a run ends at once.
    /// </summary>
    public bool HoldsRuns { get; set; }

    /// <summary>The runs it holds running (<see cref="HoldsRuns"/>), by id.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, StartRunRequest> HeldRuns { get; } = new(StringComparer.Ordinal);

    /// <summary>The locations the server told it to stop (<c>deactivate</c>), in order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Deactivated { get; } = new();

    /// <summary>Ends a run it holds, succeeded.</summary>
    public async Task EndRunAsync(string run)
    {
        HeldRuns.TryRemove(run, out var start).ShouldBeTrue($"run {run} is not held");
        await SendAsync(new AgentRunEvent(run, Event(start!, 2, "run_succeeded", new JsonObject { ["duration_ms"] = 1L })));
    }

    /// <summary>Connects and says hello, then sends <paramref name="afterHello"/> before answering anything the server sends (as an agent sends what it kept); <paramref name="tasks"/> are the tasks it says its locations serve from the start, and <paramref name="labels"/> its labels; it speaks agent protocol <paramref name="protocol"/>. With <paramref name="catchUp"/>, it answers the server's first step of catching it up (<c>resume_runs</c>) only once that completes, so it stays being caught up until then; it answers everything else meanwhile.</summary>
    public static async Task<ScriptedAgent> ConnectAsync(Uri server, string token, string name, HostCapacity capacity, AgentLoad load, IReadOnlyList<AgentMessage>? afterHello = null, IReadOnlyDictionary<string, JsonArray>? tasks = null, IReadOnlyDictionary<string, string>? labels = null, int protocol = AgentProtocol.Version, IReadOnlyList<HeldLocation>? held = null, Task? catchUp = null)
    {
        var agent = new ScriptedAgent(name) { _catchUp = catchUp ?? Task.CompletedTask };
        foreach (var (location, declared) in tasks ?? new Dictionary<string, JsonArray>())
        {
            agent.Tasks[location] = declared;
        }

        agent._socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        var uri = new UriBuilder(server) { Scheme = "ws", Path = "/api/v1/agents/connect", Query = $"name={name}&{AgentProtocol.QueryParameter}={protocol}" }.Uri;
        await agent._socket.ConnectAsync(uri, agent._stop.Token);
        await agent.SendAsync(new AgentHello(labels ?? new Dictionary<string, string>(), capacity, held ?? [], load));
        foreach (var message in afterHello ?? [])
        {
            await agent.SendAsync(message);
        }

        agent._serving = agent.ServeAsync();
        return agent;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _serving;
        }
        catch (Exception exception) when (exception is OperationCanceledException or WebSocketException)
        {
        }

        _socket.Dispose();
        _stop.Dispose();
    }

    private async Task ServeAsync()
    {
        await foreach (var message in JsonMessages.ReadAsync(_socket, _stop.Token))
        {
            switch (message)
            {
                case ResumeRunsRequest resume:
                    if (_catchUp.IsCompleted)
                    {
                        await SendAsync(new ResumedReply([]) { Request = resume.Request });
                    }
                    else
                    {
                        _ = _catchUp.ContinueWith(_ => SendAsync(new ResumedReply([]) { Request = resume.Request }), TaskScheduler.Default).Unwrap();
                    }

                    break;
                case ActivateRequest activate:
                    await SendAsync(new ActivatedReply(activate.Location, activate.Release, true, new ActivationTimingsMs(1, 1, 1, 1, 4), 0, Definitions: [], Tasks: Tasks.TryGetValue(activate.Location, out var tasks) ? (JsonArray)tasks.DeepClone() : null) { Request = activate.Request });
                    break;
                case DeactivateRequest deactivate:
                    Deactivated.Enqueue(deactivate.Location);
                    await SendAsync(new AgentOkReply { Request = deactivate.Request });
                    break;
                case AgentRunTask or AgentTaskEvents or AgentTaskResult:
                    // Left to the test, which answers a run_task as its script says.
                    TaskMessages.Writer.TryWrite(message);
                    break;
                case AgentTaskRecorded recorded:
                    Recorded.Writer.TryWrite(recorded.Call);
                    break;
                case StartRunRequest start when HoldsRuns:
                    HeldRuns[start.Run] = start;
                    await SendAsync(new RunStartedReply(start.Run, start.Release) { Request = start.Request });
                    await SendAsync(new AgentRunEvent(start.Run, Event(start, 1, "run_started")));
                    break;
                case StartRunRequest start:
                    await SendAsync(new RunStartedReply(start.Run, start.Release) { Request = start.Request });
                    await SendAsync(new AgentRunEvent(start.Run, Event(start, 1, "run_started")));
                    await SendAsync(new AgentRunEvent(start.Run, Event(start, 2, "log", new JsonObject { ["message"] = "working" })));
                    await SendAsync(new AgentRunEvent(start.Run, Event(start, 3, "run_succeeded", new JsonObject { ["duration_ms"] = (long)RunDuration.TotalMilliseconds })));
                    break;
            }
        }
    }

    private static JsonObject Event(StartRunRequest run, long seq, string type, JsonObject? more = null)
    {
        var json = new JsonObject { ["v"] = 1, ["seq"] = seq, ["ts"] = DateTimeOffset.UtcNow.ToString("O"), ["run"] = run.Run, ["type"] = type, ["job"] = run.Job };
        foreach (var (key, value) in more ?? [])
        {
            json[key] = value?.DeepClone();
        }

        return json;
    }

    public async Task SendAsync(AgentMessage message)
    {
        await _sending.WaitAsync(_stop.Token);
        try
        {
            await JsonMessages.SendAsync(_socket, message, _stop.Token);
        }
        finally
        {
            _sending.Release();
        }
    }
}
