using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Skiff.Core.Manifests;

/// <summary>
/// The one JSON encoding manifests are written in, so the same manifest always has the same bytes and
/// therefore the same digest: properties in declaration order, snake_case names, no indentation, no
/// trailing newline, UTF-8 without a byte order mark.
/// </summary>
internal static class CanonicalJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
        // Manifests never end up inside HTML; the default encoder would spell '+' in base64 hashes as \u002B.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };

    public static byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Options);

    public static T Deserialize<T>(ReadOnlySpan<byte> utf8Json, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(utf8Json, Options)
                ?? throw new InvalidManifestException(what, "it is the JSON literal null");
        }
        catch (JsonException exception)
        {
            throw new InvalidManifestException(what, exception.Message, exception);
        }
    }
}
