using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

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

    public static IReadOnlyDictionary<string, JsonElement> ToElements(IEnumerable<KeyValuePair<string, object?>> values) =>
        values.ToDictionary(pair => pair.Key, pair => ToElement(pair.Value), StringComparer.Ordinal);

    public static byte[] Line<T>(T value)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, Options);
        Array.Resize(ref bytes, bytes.Length + 1);
        bytes[^1] = (byte)'\n';
        return bytes;
    }
}
