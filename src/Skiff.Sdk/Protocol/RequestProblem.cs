using System.Text.Json;

namespace Skiff.Sdk.Protocol;

/// <summary>
/// What was wrong with a request the typed reader refused, as the error reply says it: the request is read again
/// as plain JSON to find its id (so the agent's wait ends with the error, not a timeout) and its type.
/// </summary>
internal static class RequestProblem
{
    public const string StartNeeds = "start needs \"run\" (a new run id) and \"job\" as strings, \"params\" as an object and \"release\" as a string when given";

    private const string CancelNeeds = "cancel needs \"run\", the id of the run as a string";

    private static readonly string[] Known = ["health", "list", "start", "cancel", "shutdown", "run_task", "cancel_task", "task_result"];

    public static (long? Id, string Code, string Message) Describe(byte[] request, Exception problem)
    {
        // Invalid UTF-8 surfaces as InvalidOperationException from the parser, not JsonException.
        if (!System.Text.Unicode.Utf8.IsValid(request))
        {
            return (null, "malformed", "the request is not valid JSON: it is not UTF-8");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(request);
        }
        catch (JsonException exception)
        {
            return (null, "malformed", $"the request is not valid JSON: {exception.Message}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return (null, "malformed", "a request must be a JSON object");
            }

            long? id = root.TryGetProperty("id", out var idValue) && idValue.ValueKind == JsonValueKind.Number && idValue.TryGetInt64(out var number) ? number : null;
            if (!root.TryGetProperty("type", out var typeValue) || typeValue.ValueKind != JsonValueKind.String)
            {
                return (id, "malformed", "the request has no \"type\"");
            }

            var type = typeValue.GetString()!;
            if (!Known.Contains(type, StringComparer.Ordinal))
            {
                return (id, "unknown_type", $"unknown request type '{type}'; this code server understands {string.Join(", ", Known[..^1])} and {Known[^1]}");
            }

            if (root.EnumerateObject().First().Name != "type")
            {
                return (id, "malformed", $"\"type\" must be the first field of a request; this {type} request starts with \"{root.EnumerateObject().First().Name}\"");
            }

            return (id, "malformed", type switch
            {
                "start" => StartNeeds,
                "cancel" => CancelNeeds,
                _ => $"the {type} request could not be read: {problem.Message}",
            });
        }
    }
}
