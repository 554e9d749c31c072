using System.Threading.Channels;
using Skiff.Sdk.Events;
using Skiff.Sdk.Protocol;

namespace Skiff.Sdk.Tasks;

/// <summary>
/// Sends the events of a task a pool's code server runs for a deployed call to its agent as they happen
/// (docs/tasks.md, "Live events"), in batches: whatever the task gave while the last batch was being written goes in the
/// next one, so a lone log line goes out at once and a flood goes out in few frames. The task never waits on it: when
/// the agent's side cannot keep up, events beyond <see cref="MaxQueued"/> are left out here; they still go back with the
/// result (<see cref="GatheredTaskEvents"/>, within its budget).
/// </summary>
internal sealed class LiveTaskEvents
{
    /// <summary>Events waiting at most; more are left out of the live stream (not of the result).</summary>
    public const int MaxQueued = 10_000;

    private const int MaxBatchEvents = 500;

    // Of text, roughly: the agent reads frames of up to 64 MiB, so this is about keeping batches small, not a hard limit.
    private const int MaxBatchChars = 256 * 1024;

    private readonly Channel<RunEvent> _queue = Channel.CreateBounded<RunEvent>(new BoundedChannelOptions(MaxQueued)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.DropWrite,
    });

    private readonly string _call;
    private readonly Func<TaskEventsMessage, Task> _send;
    private readonly Task _pump;

    /// <param name="call">The call the events belong to.</param>
    /// <param name="send">Writes one batch; its task completes once the batch has reached the agent's socket.</param>
    public LiveTaskEvents(string call, Func<TaskEventsMessage, Task> send)
    {
        _call = call;
        _send = send;
        _pump = Task.Run(PumpAsync);
    }

    public void Add(RunEvent runEvent) => _queue.Writer.TryWrite(runEvent);

    /// <summary>Sends what is still waiting and ends: called before the task's reply, so its events reach the agent first.</summary>
    public Task CompleteAsync()
    {
        _queue.Writer.TryComplete();
        return _pump;
    }

    private async Task PumpAsync()
    {
        var batch = new List<RunEvent>();
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            var chars = 0;
            while (batch.Count < MaxBatchEvents && chars < MaxBatchChars && _queue.Reader.TryRead(out var runEvent))
            {
                batch.Add(runEvent);
                chars += 256 + (runEvent.Message?.Length ?? 0) + (runEvent.Text?.Length ?? 0) + (runEvent.Error?.Stack?.Length ?? 0);
            }

            try
            {
                // Awaited: while the socket is busy the queue fills, rather than the code server's outbox growing without end.
                await _send(new TaskEventsMessage(_call, [.. batch])).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // The agent went away; the task's end is not heard either.
            }

            batch.Clear();
        }
    }
}
