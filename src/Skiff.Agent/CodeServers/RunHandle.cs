using System.Text.Json.Nodes;
using System.Threading.Channels;
using Skiff.Core.Messaging;

namespace Skiff.Agent.CodeServers;

/// <summary>
/// A run started on a code server: its events as they arrive, ending with exactly one terminal event
/// (run_succeeded, run_failed or run_canceled). If the process dies first, the handle ends with a
/// run_failed event that says how the process ended.
/// </summary>
/// <remarks>
/// Events travel as the code server wrote them (<see cref="RunEventJson"/>): the agent passes them on to the server
/// unchanged, so only the few it amends or inspects further (its own run_failed, a run's end) become trees.
/// </remarks>
internal sealed class RunHandle
{
    private readonly Channel<RunEventJson> _events = Channel.CreateUnbounded<RunEventJson>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly TaskCompletionSource<JsonObject> _terminal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastSeq;

    public RunHandle(string runId) => RunId = runId;

    public string RunId { get; }

    public ChannelReader<RunEventJson> Events => _events.Reader;

    /// <summary>The terminal event.</summary>
    public Task<JsonObject> Completion => _terminal.Task;

    internal bool IsFinished => _terminal.Task.IsCompleted;

    /// <summary>An event the agent wrote or amended itself; numbered after the run's last if it has no seq.</summary>
    internal void Deliver(JsonObject runEvent)
    {
        if (IsFinished)
        {
            return;
        }

        // An event the agent writes itself (the process died) continues the run's numbering, so the run's
        // events stay 1, 2, 3 … with no gap wherever they are stored.
        if (runEvent["seq"] is null)
        {
            runEvent["seq"] = _lastSeq + 1;
        }

        Write(RunEventJson.From(runEvent));
    }

    internal void Deliver(RunEventJson runEvent)
    {
        if (IsFinished)
        {
            return;
        }

        if (runEvent.Seq is null)
        {
            Deliver(runEvent.ToJsonObject());
        }
        else
        {
            Write(runEvent);
        }
    }

    private void Write(RunEventJson runEvent)
    {
        _lastSeq = runEvent.Seq ?? _lastSeq;
        _events.Writer.TryWrite(runEvent);
        if (runEvent.IsEnd)
        {
            _events.Writer.TryComplete();
            _terminal.TrySetResult(runEvent.ToJsonObject());
        }
    }
}
