using System.Collections.Concurrent;

namespace Skiff.Core.Messaging;

/// <summary>
/// The requester's half of a request/reply protocol, the same for the code-server protocol (agent → code server)
/// and the agent protocol (server → agent): each request gets a new id, the reply that repeats it completes it,
/// a request gives up after its timeout, and when the peer goes away every request still waiting fails with the
/// reason, as does every one made afterwards. Nothing waits forever on a peer that is gone.
/// </summary>
/// <remarks>
/// Framing and message shapes stay with each protocol: the caller sends the request with the id it is given and
/// hands each reply it reads to <see cref="TryComplete"/>.
/// </remarks>
internal sealed class PendingRequests<TReply>(TimeProvider time)
{
    private readonly ConcurrentDictionary<long, TaskCompletionSource<TReply>> _waiting = new();
    private long _lastId;
    private Exception? _closed;

    /// <summary>
    /// Sends one request through <paramref name="send"/> (given the request's id) and waits for its reply.
    /// </summary>
    /// <exception cref="TimeoutException">No reply within <paramref name="timeout"/>; callers say which peer and request.</exception>
    /// <exception cref="Exception">The reason given to <see cref="Close"/>, when the peer is gone or goes while this waits.</exception>
    public async Task<TReply> RequestAsync(Func<long, CancellationToken, Task> send, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _lastId);
        var reply = new TaskCompletionSource<TReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[id] = reply;
        try
        {
            // Checked after the request is registered: a Close racing with this either sees it or is seen here.
            if (Volatile.Read(ref _closed) is { } reason)
            {
                throw reason;
            }

            await send(id, cancellationToken).ConfigureAwait(false);
            return timeout is { } limit
                ? await reply.Task.WaitAsync(limit, time, cancellationToken).ConfigureAwait(false)
                : await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _waiting.TryRemove(id, out _);
        }
    }

    /// <summary>Whether a request with this id is still waiting (its reply may need handling before it is handed over).</summary>
    public bool IsWaiting(long id) => _waiting.ContainsKey(id);

    /// <summary>Hands a reply to the request it answers; false when none waits for it (timed out, or never sent).</summary>
    public bool TryComplete(long id, TReply reply) => _waiting.TryGetValue(id, out var waiting) && waiting.TrySetResult(reply);

    /// <summary>The peer is gone: every waiting request fails with <paramref name="reason"/>, and so does every later one.</summary>
    public void Close(Exception reason)
    {
        Interlocked.CompareExchange(ref _closed, reason, null);
        foreach (var waiting in _waiting.Values)
        {
            waiting.TrySetException(_closed);
        }
    }
}
