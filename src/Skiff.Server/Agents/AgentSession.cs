using System.Net.WebSockets;
using Skiff.Core;
using Skiff.Core.Messaging;

namespace Skiff.Server.Agents;

/// <summary>
/// One connected agent: assignments go out on its WebSocket, replies are matched to requests by id, and
/// run events are handed to the run's sink in the order they arrive.
/// </summary>
internal sealed class AgentSession(string name, WebSocket socket)
{
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private readonly PendingRequests<AgentMessage> _requests = new(TimeProvider.System);
    private readonly CancellationTokenSource _draining = new();
    private bool _caughtUp;

    public string Name { get; } = name;

    /// <summary>The agent protocol version the agent speaks (<see cref="AgentProtocol"/>).</summary>
    public int Protocol { get; init; } = AgentProtocol.Version;

    /// <summary>
    /// Tells the agent the outcome it sent for <paramref name="call"/> is recorded, so it may forget it; only an agent that
    /// keeps outcomes (<see cref="AgentProtocol.RecordsTasks"/>) is told, an older one would answer "unknown message".
    /// </summary>
    public Task TrySendTaskRecordedAsync(string call) =>
        Protocol >= AgentProtocol.RecordsTasks ? TrySendAsync(new AgentTaskRecorded(call)) : Task.CompletedTask;

    /// <summary>Called for every message that is not a reply: run events, reports.</summary>
    public Func<AgentMessage, Task>? OnMessage { get; set; }

    /// <summary>Called for a reply before the waiting request sees it, in receive order (used to create a run's record before its first event).</summary>
    public Func<AgentMessage, Task>? OnReply { get; set; }

    public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Canceled when the agent said it is stopping (<see cref="AgentDraining"/>): it finishes what it holds and gets no new
    /// task or run on this session. A session's own state, not the store's: the agent's next start is a new session.
    /// </summary>
    public CancellationToken Draining => _draining.Token;

    /// <summary>
    /// Whether the server has caught the agent up on this session (its locations activated as the store says): until
    /// then a pool's task sent to it would find the pool not live yet, fail its delivery and count one more.
    /// </summary>
    public bool IsCaughtUp
    {
        get => Volatile.Read(ref _caughtUp);
        set => Volatile.Write(ref _caughtUp, value);
    }

    /// <summary>Whether the agent said it is stopping (<see cref="Draining"/>).</summary>
    public bool IsDraining => _draining.IsCancellationRequested;

    /// <summary>The agent said it is stopping: its pools' workers take nothing more for it once their task is settled.</summary>
    public void Drain() => _draining.Cancel();

    /// <summary>Where a message that could not be handled is logged.</summary>
    public Microsoft.Extensions.Logging.ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>Sends a request and returns the agent's reply: the one the request expects, or an <see cref="AgentErrorReply"/>.</summary>
    public async Task<AgentMessage> RequestAsync(AgentMessage message, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            return await _requests.RequestAsync(
                (id, token) => SendAsync(message with { Request = id }, token),
                timeout,
                cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new AgentUnavailableException($"agent '{Name}' did not answer a {JsonMessages.TypeOf(message)} request within {timeout.TotalSeconds:0} s.");
        }
    }

    public async Task SendAsync(AgentMessage message, CancellationToken cancellationToken)
    {
        await _sendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await JsonMessages.SendAsync(socket, message, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is WebSocketException or IOException or ObjectDisposedException)
        {
            throw new AgentUnavailableException($"agent '{Name}' disconnected.");
        }
        finally
        {
            _sendGate.Release();
        }
    }

    /// <summary>Sends a notice that needs no answer; one the agent does not get is sent again another way (or not needed).</summary>
    public async Task TrySendAsync(AgentMessage message)
    {
        try
        {
            await SendAsync(message, CancellationToken.None).ConfigureAwait(false);
        }
        catch (AgentUnavailableException)
        {
        }
    }

    /// <summary>Reads until the agent goes away; then fails every request still waiting.</summary>
    public async Task ReceiveLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var message in JsonMessages.ReadAsync(socket, cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    if (message.Request is { } id && _requests.IsWaiting(id))
                    {
                        // A reply the server cannot read still ends the wait, with what was wrong, not a timeout.
                        var reply = message is UnreadableMessage unreadable
                            ? new AgentErrorReply(unreadable.Code, $"agent '{Name}' sent a reply this server could not read: {unreadable.Problem}") { Request = id }
                            : message;
                        if (OnReply is { } onReply)
                        {
                            await onReply(reply).ConfigureAwait(false);
                        }

                        _requests.TryComplete(id, reply);
                    }
                    else if (OnMessage is { } onMessage)
                    {
                        await onMessage(message).ConfigureAwait(false);
                    }
                }
                catch (SkiffException exception)
                {
                    // One message the server cannot record (an event of a run it has no record of) must not
                    // end the session and fail every other request on it.
                    Log.AgentMessageNotRecorded(Logger, JsonMessages.TypeOf(message), Name, exception.Message);
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    // Nor must a bug in handling one message: the agent goes on sending the others.
                    Log.AgentMessageFailed(Logger, exception, JsonMessages.TypeOf(message), Name);
                }
            }
        }
        catch (Exception exception) when (exception is WebSocketException or OperationCanceledException or IOException)
        {
            // The agent went away.
        }
        finally
        {
            _requests.Close(new AgentUnavailableException($"agent '{Name}' disconnected before it answered."));

            Closed.TrySetResult();
        }
    }
}
