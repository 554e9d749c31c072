using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Skiff.Server.Api;

/// <summary>Reads JSON request bodies within the configured size limit, as the messages of <see cref="Skiff.Client.Api"/>.</summary>
internal static class Requests
{
    /// <exception cref="RequestTooLargeException">The body is over <paramref name="limit"/> bytes.</exception>
    /// <exception cref="BadRequestException">It is not JSON, or not a <typeparamref name="T"/>.</exception>
    public static async Task<T> ReadAsync<T>(HttpRequest request, long limit, JsonTypeInfo<T> type, CancellationToken cancellationToken)
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

        if (buffer.Length == 0)
        {
            throw new BadRequestException("the request needs a JSON object as its body; it had none.");
        }

        try
        {
            // The serializer refuses a repeated property of a typed member (ApiJson), but a JsonObject member (a run's
            // params, a location's settings) holds it until it is first read, and then throws ArgumentException, a 500.
            // Checked over the whole body first, so it is a 400 like any other malformed JSON.
            using (JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), new JsonDocumentOptions { AllowDuplicateProperties = false, MaxDepth = 64 }))
            {
            }

            return JsonSerializer.Deserialize(buffer.ToArray(), type) ?? throw new BadRequestException("the request body must be a JSON object, not null.");
        }
        catch (JsonException exception)
        {
            // The message names the field (its JSON path) and what was expected there.
            throw new BadRequestException($"the request body is not valid JSON for this call (docs/api.md): {exception.Message}");
        }
    }

    public static string Required(string? value, string name) =>
        value is { Length: > 0 }
            ? value
            : throw new BadRequestException($"the request needs \"{name}\" as a non-empty string.");

    /// <summary>A git object id: 40 lowercase hex digits (SHA-1), or 64 in a SHA-256 repository.</summary>
    public static string? OptionalCommit(string? value, string name) =>
        value switch
        {
            null => null,
            { Length: 40 or 64 } text when text.All(char.IsAsciiHexDigitLower) => text,
            var text => throw new BadRequestException($"\"{name}\" must be a git commit id (40 or 64 lowercase hex digits), not '{text}'."),
        };

    /// <summary>A count or a duration the client reports: recorded as given, so it must at least be one.</summary>
    public static long NonNegative(long value, string name) =>
        value >= 0 ? value : throw new BadRequestException($"\"{name}\" must be zero or more, not {value}.");

    /// <summary>Stage durations in milliseconds: named, and none negative.</summary>
    public static IReadOnlyDictionary<string, long>? Durations(IReadOnlyDictionary<string, long>? value, string name)
    {
        foreach (var (stage, ms) in value ?? new Dictionary<string, long>())
        {
            if (string.IsNullOrWhiteSpace(stage) || stage.Length > 64)
            {
                throw new BadRequestException($"\"{name}\" names its stages with 1 to 64 characters, as the CLI sends them (restore, build, pack, upload).");
            }

            NonNegative(ms, $"{name}.{stage}");
        }

        return value;
    }
}
