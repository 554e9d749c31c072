using System.Net.WebSockets;
using System.Text.Json.Nodes;
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
    private readonly PendingRequests<JsonObject> _requests = new(TimeProvider.System);

    public string Name { get; } = name;

    /// <summary>Called for every message that is not a reply: run events, reports.</summary>
    public Func<JsonObject, Task>? OnMessage { get; set; }

    /// <summary>Called for a reply before the waiting request sees it, in receive order (used to create a run's record before its first event).</summary>
    public Func<JsonObject, Task>? OnReply { get; set; }

    public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task<JsonObject> RequestAsync(JsonObject message, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            return await _requests.RequestAsync(
                (id, token) =>
                {
                    message["request"] = id;
                    return SendAsync(message, token);
                },
                timeout,
                cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new AgentUnavailableException($"agent '{Name}' did not answer a {(string?)message["type"]} request within {timeout.TotalSeconds:0} s.");
        }
    }

    public async Task SendAsync(JsonObject message, CancellationToken cancellationToken)
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
    public async Task TrySendAsync(JsonObject message)
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
            await foreach (var json in JsonMessages.ReadAsync(socket, cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    if (json["request"] is JsonValue value && value.TryGetValue<long>(out var id) && _requests.IsWaiting(id))
                    {
                        if (OnReply is { } onReply)
                        {
                            await onReply(json).ConfigureAwait(false);
                        }

                        _requests.TryComplete(id, json);
                    }
                    else if (OnMessage is { } onMessage)
                    {
                        await onMessage(json).ConfigureAwait(false);
                    }
                }
                catch (SkiffException)
                {
                    // One message the server cannot record (an event of a run it has no record of) must not
                    // end the session and fail every other request on it.
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
