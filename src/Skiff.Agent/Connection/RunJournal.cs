using System.Text.Json.Nodes;
using Skiff.Core.Messaging;

namespace Skiff.Agent.Connection;

/// <summary>
/// The events of one run this agent streams to the server, kept until the server says it stored the run's
/// end. While the connection is up each event goes out as it happens; when it drops, they pile up here, and
/// after a reconnect the server names the last one it stored and the rest are sent again, in order.
/// </summary>
/// <remarks>
/// Events go out only on a connection the journal is in step with: a run carried over from an earlier
/// connection waits for the server's resume before sending anything, so the server never stores an event
/// past a gap (its last stored sequence number is then always where to resume).
/// </remarks>
internal sealed class RunJournal(string runId, long connection)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<JsonObject> _events = [];
    private int _sent;
    private long _connection = connection;

    public string RunId { get; } = runId;

    /// <summary>The connection this journal was last in step with.</summary>
    public long Connection => Volatile.Read(ref _connection);

    /// <summary>Whether the run's last event has been recorded here.</summary>
    public bool Ended { get; private set; }

    /// <summary>Records an event and sends what is unsent, if the journal is in step with the current connection.</summary>
    public async Task AppendAsync(JsonObject runEvent, long current, Func<JsonObject, long, Task<bool>> send)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _events.Add(runEvent);
            Ended |= RunEvents.IsEnd(runEvent);
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
    public async Task ResumeAsync(long storedThrough, long current, Func<JsonObject, long, Task<bool>> send)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _connection = current;
            _sent = _events.Count(e => ((long?)e["seq"] ?? 0) <= storedThrough);
            await FlushAsync(current, send).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task FlushAsync(long current, Func<JsonObject, long, Task<bool>> send)
    {
        while (_sent < _events.Count)
        {
            if (!await send(_events[_sent], current).ConfigureAwait(false))
            {
                // The connection went; nothing more goes out until the server asks again after a reconnect.
                _connection = -1;
                return;
            }

            _sent++;
        }
    }
}
