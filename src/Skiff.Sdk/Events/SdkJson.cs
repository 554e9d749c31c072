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

    public static byte[] Line<T>(T value)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, Options);
        Array.Resize(ref bytes, bytes.Length + 1);
        bytes[^1] = (byte)'\n';
        return bytes;
    }
}
