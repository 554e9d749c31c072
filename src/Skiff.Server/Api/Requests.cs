using System.Text.Json;
using System.Text.Json.Nodes;

namespace Skiff.Server.Api;

/// <summary>Reads JSON request bodies within the configured size limit.</summary>
internal static class Requests
{
    public static async Task<JsonObject> ReadJsonAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
        {
            throw new RequestTooLargeException($"the request body is {request.ContentLength} bytes; this server accepts at most {limit} bytes of JSON.");
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                throw new RequestTooLargeException($"the request body is over {limit} bytes, the most this server accepts as JSON.");
            }

            buffer.Write(chunk, 0, read);
        }

        try
        {
            return JsonNode.Parse(buffer.ToArray()) as JsonObject ?? throw new BadRequestException("the request body must be a JSON object.");
        }
        catch (JsonException exception)
        {
            throw new BadRequestException($"the request body is not valid JSON: {exception.Message}");
        }
    }

    public static string RequiredString(JsonObject body, string name) =>
        body[name] is JsonValue value && value.TryGetValue<string>(out var text) && text.Length > 0
            ? text
            : throw new BadRequestException($"the request needs \"{name}\" as a non-empty string.");

    /// <summary>A git object id: 40 lowercase hex digits (SHA-1), or 64 in a SHA-256 repository.</summary>
    public static string? OptionalCommit(JsonObject body, string name) =>
        OptionalString(body, name) switch
        {
            null => null,
            { Length: 40 or 64 } text when text.All(char.IsAsciiHexDigitLower) => text,
            var text => throw new BadRequestException($"\"{name}\" must be a git commit id (40 or 64 lowercase hex digits), not '{text}'."),
        };

    public static string? OptionalString(JsonObject body, string name) =>
        body[name] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    /// <summary>A whole number, or null when absent; anything else (a string, a fraction) is refused.</summary>
    public static int? OptionalInt(JsonObject body, string name) =>
        body[name] switch
        {
            null => null,
            JsonValue value when value.TryGetValue<int>(out var number) => number,
            var other => throw new BadRequestException($"\"{name}\" must be a whole number, not {other.ToJsonString()}."),
        };
}
