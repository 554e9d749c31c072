using System.Text.Json.Nodes;
using System.Threading.Channels;
using Skiff.Core.Messaging;

namespace Skiff.Agent.CodeServers;

/// <summary>
/// A run started on a code server: its events as they arrive, ending with exactly one terminal event
/// (run_succeeded, run_failed or run_canceled). If the process dies first, the handle ends with a
/// run_failed event that says how the process ended.
/// </summary>
internal sealed class RunHandle
{
    private readonly Channel<JsonObject> _events = Channel.CreateUnbounded<JsonObject>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly TaskCompletionSource<JsonObject> _terminal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastSeq;

    public RunHandle(string runId) => RunId = runId;

    public string RunId { get; }

    public ChannelReader<JsonObject> Events => _events.Reader;

    /// <summary>The terminal event.</summary>
    public Task<JsonObject> Completion => _terminal.Task;

    internal bool IsFinished => _terminal.Task.IsCompleted;

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

        _lastSeq = (long?)runEvent["seq"] ?? _lastSeq;
        _events.Writer.TryWrite(runEvent);
        if (RunEvents.IsEnd(runEvent))
        {
            _events.Writer.TryComplete();
            _terminal.TrySetResult(runEvent);
        }
    }
}
