using Skiff.Core.Messaging;

namespace Skiff.Agent.Connection;

/// <summary>
/// The events of one run this agent streams to the server, kept until the server says it stored the run's
/// end. While the connection is up, whatever is unsent goes out at once, many events to a message
/// (<see cref="AgentRunEvents"/>); when it drops, they pile up here, and after a reconnect the server names the last
/// one it stored and the rest are sent again, in order.
/// </summary>
/// <remarks>
/// Events go out only on a connection the journal is in step with: a run carried over from an earlier
/// connection waits for the server's resume before sending anything, so the server never stores an event
/// past a gap (its last stored sequence number is then always where to resume). Batches form by themselves: events
/// that arrive while a message is being sent go in the next one, so a lone event is sent at once and a flood in
/// large messages.
/// </remarks>
internal sealed class RunJournal(string runId, long connection)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<RunEventJson> _events = [];
    private int _sent;
    private long _connection = connection;

    public string RunId { get; } = runId;

    /// <summary>The connection this journal was last in step with.</summary>
    public long Connection => Volatile.Read(ref _connection);

    /// <summary>Whether the run's last event has been recorded here.</summary>
    public bool Ended { get; private set; }

    /// <summary>
    /// Records events, in order, and sends what is unsent if the journal is in step with the current connection.
    /// <paramref name="send"/> gets consecutive events (at most <see cref="AgentRunEvents.MaxEvents"/>) and says whether
    /// they went out.
    /// </summary>
    public async Task AppendAsync(IReadOnlyList<RunEventJson> runEvents, long current, Func<IReadOnlyList<RunEventJson>, long, Task<bool>> send)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var runEvent in runEvents)
            {
                _events.Add(runEvent);
                Ended |= runEvent.IsEnd;
            }

            if (_connection == current)
            {
                await FlushAsync(current, send).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Starts over on a new connection from the event after <paramref name="storedThrough"/>, which the server holds.</summary>
    public async Task ResumeAsync(long storedThrough, long current, Func<IReadOnlyList<RunEventJson>, long, Task<bool>> send)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _connection = current;
            _sent = _events.Count(e => (e.Seq ?? 0) <= storedThrough);
            await FlushAsync(current, send).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task FlushAsync(long current, Func<IReadOnlyList<RunEventJson>, long, Task<bool>> send)
    {
        while (_sent < _events.Count)
        {
            var count = 0;
            var characters = 0;
            while (_sent + count < _events.Count && count < AgentRunEvents.MaxEvents && (count == 0 || characters + _events[_sent + count].Json.Length <= AgentRunEvents.MaxBytes))
            {
                characters += _events[_sent + count].Json.Length;
                count++;
            }

            if (!await send(_events.GetRange(_sent, count), current).ConfigureAwait(false))
            {
                // The connection went; nothing more goes out until the server asks again after a reconnect.
                _connection = -1;
                return;
            }

            _sent += count;
        }
    }
}
