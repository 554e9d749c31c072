using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Skiff.Core.Messaging;

/// <summary>
/// One run event (docs/events.md) as its JSON text, with the fields the agent and server act on, <see cref="Seq"/>,
/// <see cref="Type"/> and <see cref="Run"/>, taken out in the same pass that reads it. The text is passed on and stored as it came: the
/// code server in the user's program writes events with whatever SDK it was built with, and a typed copy would drop
/// fields it did not know.
/// </summary>
/// <remarks>
/// A run that logs 50,000 lines crosses the agent and the server as 50,000 of these. Read as a <see cref="JsonObject"/>
/// each was parsed into a tree, asked for its seq and type (which builds the tree's dictionary), and written out again
/// to be stored: three passes and a few dozen objects per event. Read with <see cref="RunEventJsonConverter"/> it is
/// one pass over the bytes and one string.
/// </remarks>
[JsonConverter(typeof(RunEventJsonConverter))]
internal sealed class RunEventJson
{
    private RunEventJson(string json, long? seq, string? type, string? run)
    {
        Json = json;
        Seq = seq;
        Type = type;
        Run = run;
    }

    /// <summary>The event, a JSON object, as written on the wire.</summary>
    public string Json { get; }

    /// <summary>The event's <c>seq</c>; null when it has none or it is not a whole number.</summary>
    public long? Seq { get; }

    /// <summary>The event's <c>type</c>; null when it has none or it is not a string.</summary>
    public string? Type { get; }

    /// <summary>The event's <c>run</c> (the run's id); null when it has none or it is not a string.</summary>
    public string? Run { get; }

    /// <summary>Whether the event is the one that ends its run (<see cref="RunEvents.IsEnd"/>).</summary>
    public bool IsEnd => Type is "run_succeeded" or "run_failed" or "run_canceled";

    /// <summary>An event the agent holds as a tree (it may have numbered or amended it), written as the wire writes text.</summary>
    public static RunEventJson From(JsonObject runEvent)
    {
        ArgumentNullException.ThrowIfNull(runEvent);
        // A number the agent set itself is held as the type it was set with (a long, or an int in tests); one read
        // from the wire as a JSON element, which reads as either.
        var seq = runEvent["seq"] is not JsonValue seqValue ? null
            : seqValue.TryGetValue<long>(out var number) ? number
            : seqValue.TryGetValue<int>(out var small) ? small
            : (long?)null;
        var type = runEvent["type"] is JsonValue typeValue && typeValue.TryGetValue<string>(out var text) ? text : null;
        var run = runEvent["run"] is JsonValue runValue && runValue.TryGetValue<string>(out var id) ? id : null;
        return new RunEventJson(runEvent.ToJsonString(AgentJson.Wire.Options), seq, type, run);
    }

    /// <summary>
    /// Reads the event that starts at <paramref name="reader"/>'s current token (a <see cref="JsonTokenType.StartObject"/>)
    /// in one pass over <paramref name="source"/>, the bytes the reader reads: the text is the object's bytes as they are
    /// (the writer's escaping and all), its seq, type and run picked up on the way. Leaves the reader on the object's end.
    /// </summary>
    /// <remarks>
    /// The agent reads each code-server frame so. Deserializing the frame into a <see cref="JsonObject"/> and writing it out
    /// again took about a quarter of the CPU of a run logging 50,000 lines (perf, bench/results/events-2026-11-29.md).
    /// </remarks>
    /// <exception cref="JsonException">The token is not an object, or the JSON is malformed.</exception>
    public static RunEventJson Read(ref Utf8JsonReader reader, ReadOnlySpan<byte> source)
    {
        if (reader.TokenType != JsonTokenType.StartObject || reader.HasValueSequence)
        {
            throw new JsonException($"a run event must be a JSON object, not {reader.TokenType}.");
        }

        var start = checked((int)reader.TokenStartIndex);
        var depth = reader.CurrentDepth;
        long? seq = null;
        string? type = null;
        string? run = null;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            // Each top-level property: its name, then its value (skipped whole when it is an object or array).
            if (reader.ValueTextEquals("seq"u8))
            {
                reader.Read();
                seq = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var number) ? number : null;
            }
            else if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                type = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
            }
            else if (reader.ValueTextEquals("run"u8))
            {
                reader.Read();
                run = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
            }
            else
            {
                reader.Read();
            }

            reader.Skip();
        }

        if (reader.TokenType != JsonTokenType.EndObject)
        {
            throw new JsonException("a run event ended before its closing brace.");
        }

        var end = checked((int)reader.BytesConsumed);
        return new RunEventJson(Encoding.UTF8.GetString(source[start..end]), seq, type, run);
    }

    /// <summary>The event as a tree, for the rare reader that needs more of it than its seq and type (a run's end).</summary>
    public JsonObject ToJsonObject() => JsonNode.Parse(Json)!.AsObject();

    public override string ToString() => Json;

    /// <summary>
    /// Reads an event in one pass: its text, seq and type from one parse of its bytes; writes it back as that text.
    /// Anything but a JSON object is refused (a <see cref="JsonException"/>, so the message it came in is malformed).
    /// </summary>
    internal sealed class RunEventJsonConverter : JsonConverter<RunEventJson>
    {
        public override RunEventJson Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new JsonException($"a run event must be a JSON object, not {reader.TokenType}.");
            }

            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            var seq = root.TryGetProperty("seq"u8, out var seqValue) && seqValue.ValueKind == JsonValueKind.Number && seqValue.TryGetInt64(out var number) ? number : (long?)null;
            var type = root.TryGetProperty("type"u8, out var typeValue) && typeValue.ValueKind == JsonValueKind.String ? typeValue.GetString() : null;
            var run = root.TryGetProperty("run"u8, out var runValue) && runValue.ValueKind == JsonValueKind.String ? runValue.GetString() : null;
            return new RunEventJson(root.GetRawText(), seq, type, run);
        }

        // Its text was read by the reader above or written by From, so it is one valid JSON object.
        public override void Write(Utf8JsonWriter writer, RunEventJson value, JsonSerializerOptions options) =>
            writer.WriteRawValue(value.Json, skipInputValidation: true);
    }
}
