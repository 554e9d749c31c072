using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Skiff.Core.Messaging;

/// <summary>
/// The framing of the agent protocol (docs/agent-protocol.md), for both ends: one JSON object per text
/// message on a WebSocket, read and written as the typed messages of <see cref="AgentMessage"/>.
/// </summary>
internal static class JsonMessages
{
    /// <summary>
    /// The messages the peer sends, until it closes. A message that is not a JSON object is dropped rather
    /// than ending the connection: the peer's next one may be fine, and whoever waited for it times out. A JSON
    /// object that is not a message this release reads comes as an <see cref="UnreadableMessage"/>, so a request
    /// can still be answered with an error.
    /// </summary>
    public static async IAsyncEnumerable<AgentMessage> ReadAsync(WebSocket socket, [EnumeratorCancellation] CancellationToken cancellationToken)
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

            var read = Read(message.GetBuffer().AsSpan(0, (int)message.Length));
            message.SetLength(0);
            if (read is not null)
            {
                yield return read;
            }
        }
    }

    /// <summary>Sends one message; callers serialize their sends, as a WebSocket allows one at a time.</summary>
    public static Task SendAsync(WebSocket socket, AgentMessage message, CancellationToken cancellationToken) =>
        socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message, AgentJson.Wire.AgentMessage), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);

    /// <summary>A message's "type" on the wire.</summary>
    public static string TypeOf(AgentMessage message) =>
        AgentJson.Wire.AgentMessage.PolymorphismOptions!.DerivedTypes.FirstOrDefault(d => d.DerivedType == message.GetType()).TypeDiscriminator as string
        ?? throw new ArgumentException($"{message.GetType().Name} is not a message of the agent protocol.", nameof(message));

    /// <summary>One message: typed, an <see cref="UnreadableMessage"/> for a JSON object that is no message, or null for anything else.</summary>
    internal static AgentMessage? Read(ReadOnlySpan<byte> json)
    {
        try
        {
            return TryReadRunEvents(json) ?? JsonSerializer.Deserialize(json, AgentJson.Wire.AgentMessage);
        }
        catch (Exception exception) when (exception is JsonException or NotSupportedException or InvalidOperationException)
        {
            // Invalid UTF-8 surfaces as InvalidOperationException, and a JSON object without "type" (so no message
            // type to make) as NotSupportedException.
            return Unreadable(json, exception);
        }
    }

    /// <summary>
    /// A <c>run_events</c> message read in one pass over its bytes, each event by <see cref="RunEventJson.Read"/>; null for
    /// any other message, or one with anything unusual about it (a field this reader does not know, a value of the wrong
    /// kind, invalid UTF-8), which the serializer then reads, or refuses, as it always did.
    /// </summary>
    /// <remarks>
    /// The bulk of what agents send. Through the serializer, each event became a <see cref="JsonDocument"/> to find its
    /// seq, type and run (<see cref="RunEventJson.RunEventJsonConverter"/> cannot see the message's bytes), ~6% of the
    /// server's CPU while a run logged 50,000 lines (perf, bench/results/events-2026-11-29.md).
    /// </remarks>
    private static AgentRunEvents? TryReadRunEvents(ReadOnlySpan<byte> json)
    {
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            return null;
        }

        var reader = new Utf8JsonReader(json);
        string? type = null;
        string? run = null;
        long? request = null;
        List<RunEventJson>? events = null;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8) && type is null)
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.String || !reader.ValueTextEquals("run_events"u8))
                    {
                        return null;
                    }

                    type = "run_events";
                }
                else if (reader.ValueTextEquals("run"u8) && run is null)
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.String)
                    {
                        return null;
                    }

                    run = reader.GetString();
                }
                else if (reader.ValueTextEquals("request"u8) && request is null)
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var number))
                    {
                        return null;
                    }

                    request = number;
                }
                else if (reader.ValueTextEquals("events"u8) && events is null)
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
                    {
                        return null;
                    }

                    events = [];
                    while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
                    {
                        events.Add(RunEventJson.Read(ref reader, json));
                    }

                    if (reader.TokenType != JsonTokenType.EndArray)
                    {
                        return null;
                    }
                }
                else
                {
                    return null;
                }
            }

            return reader.TokenType == JsonTokenType.EndObject && !reader.Read() && type is not null && run is not null && events is not null
                ? new AgentRunEvents(run, events) { Request = request }
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>What is wrong with a message the typed reader refused, read again as plain JSON for its request id and type.</summary>
    private static UnreadableMessage? Unreadable(ReadOnlySpan<byte> json, Exception problem)
    {
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            return null;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException)
        {
            return null;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            long? request = root.TryGetProperty("request", out var id) && id.ValueKind == JsonValueKind.Number && id.TryGetInt64(out var number) ? number : null;
            if (!root.TryGetProperty("type", out var typeValue) || typeValue.ValueKind != JsonValueKind.String)
            {
                return new UnreadableMessage(null, "malformed", "the message has no \"type\" string") { Request = request };
            }

            var type = typeValue.GetString()!;
            var known = AgentJson.Wire.AgentMessage.PolymorphismOptions!.DerivedTypes.Any(d => d.TypeDiscriminator as string == type);
            return known
                ? new UnreadableMessage(type, "malformed", $"the {type} message could not be read: {problem.Message}") { Request = request }
                : new UnreadableMessage(type, "unknown_type", $"'{type}' is not a message of agent protocol {AgentProtocol.Version}") { Request = request };
        }
    }
}
