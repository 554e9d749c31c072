using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Skiff.Sdk.Events;

/// <summary>The JSON settings of everything the SDK writes: events, protocol messages, op outputs.</summary>
internal static class SdkJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        WriteIndented = false,
        // Set up front: JsonNode.ToJsonString with these options needs a resolver, and options are read-only once used.
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    };

    /// <summary>A value as JSON, or its ToString() when it cannot be serialized (a log property must never throw).</summary>
    public static JsonElement ToElement(object? value)
    {
        try
        {
            return JsonSerializer.SerializeToElement(value, value?.GetType() ?? typeof(object), Options);
        }
        catch (Exception exception) when (exception is NotSupportedException or InvalidOperationException or JsonException or ArgumentException)
        {
            return JsonSerializer.SerializeToElement(value?.ToString(), Options);
        }
    }

    /// <summary>Named values as JSON; a name given twice (a log template may repeat a placeholder) keeps its last value.</summary>
    public static IReadOnlyDictionary<string, JsonElement> ToElements(IEnumerable<KeyValuePair<string, object?>> values)
    {
        var elements = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (key, value) in values)
        {
            elements[key] = ToElement(value);
        }

        return elements;
    }

    /// <summary>
    /// A log call's named values as JSON (as <see cref="ToElements"/> writes them), leaving out <paramref name="skip"/>;
    /// null when none is left. Strings, whole numbers and booleans are written straight into one document, read back once.
    /// </summary>
    /// <remarks>
    /// A run logs in a loop, so this is on its hottest path. Each value through <see cref="ToElement"/> was a serializer
    /// call and a document of its own, and most of a run's process went on that code being compiled and run
    /// (perf, bench/results/events-2026-11-29.md). Other values still go through <see cref="ToElement"/>, so each is
    /// written exactly as it was, and one that cannot be serialized is still its ToString().
    /// </remarks>
    public static IReadOnlyDictionary<string, JsonElement>? LogProperties(IReadOnlyList<KeyValuePair<string, object?>> values, string skip)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        var any = false;
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = Options.Encoder, SkipValidation = true }))
        {
            writer.WriteStartObject();
            for (var i = 0; i < values.Count; i++)
            {
                var (key, value) = values[i];
                if (key == skip)
                {
                    continue;
                }

                any = true;
                writer.WritePropertyName(key);
                switch (value)
                {
                    case null:
                        writer.WriteNullValue();
                        break;
                    case string text:
                        writer.WriteStringValue(text);
                        break;
                    case int number:
                        writer.WriteNumberValue(number);
                        break;
                    case long number:
                        writer.WriteNumberValue(number);
                        break;
                    case bool flag:
                        writer.WriteBooleanValue(flag);
                        break;
                    default:
                        ToElement(value).WriteTo(writer);
                        break;
                }
            }

            writer.WriteEndObject();
        }

        if (!any)
        {
            return null;
        }

        // A name given twice (a template may repeat a placeholder) keeps its last value, as ToElements does.
        var root = JsonElement.Parse(buffer.WrittenSpan);
        var elements = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            elements[property.Name] = property.Value;
        }

        return elements;
    }

    public static byte[] Line<T>(T value)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, Options);
        Array.Resize(ref bytes, bytes.Length + 1);
        bytes[^1] = (byte)'\n';
        return bytes;
    }
}
