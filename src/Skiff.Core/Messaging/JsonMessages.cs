using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;

namespace Skiff.Core.Messaging;

/// <summary>
/// The framing of the agent protocol (docs/agent-protocol.md), for both ends: one JSON object per text
/// message on a WebSocket.
/// </summary>
internal static class JsonMessages
{
    /// <summary>
    /// The messages the peer sends, until it closes. A message that is not a JSON object is dropped rather
    /// than ending the connection: the peer's next one may be fine, and whoever waited for it times out.
    /// </summary>
    public static async IAsyncEnumerable<JsonObject> ReadAsync(WebSocket socket, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (socket.State == WebSocketState.Open)
        {
            var result = await socket.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                yield break;
            }

            message.Write(buffer, 0, result.Count);
            if (!result.EndOfMessage)
            {
                continue;
            }

            JsonObject? json;
            try
            {
                json = JsonNode.Parse(message.GetBuffer().AsSpan(0, (int)message.Length)) as JsonObject;
            }
            catch (System.Text.Json.JsonException)
            {
                json = null;
            }

            message.SetLength(0);
            if (json is not null)
            {
                yield return json;
            }
        }
    }

    /// <summary>Sends one message; callers serialize their sends, as a WebSocket allows one at a time.</summary>
    public static Task SendAsync(WebSocket socket, JsonObject message, CancellationToken cancellationToken) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
}
