using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Sdk.Local;
using Skiff.Sdk.Protocol;

namespace Skiff.Cli.Commands;

/// <summary>Prints run events (docs/events.md) for a person, one line each, like a program run by hand does.</summary>
internal static class EventPrinter
{
    // Lenient where the wire's settings are strict: an event as stored may leave out what the SDK's record requires in
    // its constructor (an error without a stack), and must still print.
    private static readonly ProtocolJson Reading = new(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });

    public static string Format(JsonObject e)
    {
        var time = DateTimeOffset.TryParse((string?)e["ts"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var ts)
            ? ts.ToLocalTime().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)
            : "            ";
        var op = $"{(string?)e["op"],-16}";
        var text = e["task"] is not null && TaskText(e) is { } task ? task : (string?)e["type"] switch
        {
            "run_started" => $"run {(string?)e["run"]} started: {(string?)e["job"]} on {Short((string?)e["release"])}",
            "run_succeeded" => $"run succeeded in {(long?)e["duration_ms"]} ms",
            "run_failed" => $"run failed: {(string?)e["reason"]}",
            "run_canceled" => "run canceled",
            "op_started" => $"{op} started{((int?)e["attempt"] > 1 ? $" (attempt {(int?)e["attempt"]})" : "")}",
            "op_succeeded" => $"{op} succeeded in {(long?)e["duration_ms"]} ms",
            "op_failed" => $"{op} FAILED: {(string?)e["error"]?["type"]}: {(string?)e["error"]?["message"]}",
            "op_retrying" => $"{op} attempt {(int?)e["attempt"]} failed ({(string?)e["error"]?["message"]}); retrying in {(long?)e["delay_ms"]} ms",
            "op_canceled" => $"{op} canceled",
            "op_skipped" => $"{op} skipped: {(string?)e["reason"]}",
            "log" => $"{op} {(string?)e["level"],-5} {(string?)e["message"]}",
            "progress" => string.Create(CultureInfo.InvariantCulture, $"{op} {((double?)e["fraction"] ?? 0) * 100,3:0}%  {(string?)e["message"]}"),
            "output" => $"{(string?)e["op"] ?? "(run)",-16} {(string?)e["stream"],-6} {(string?)e["text"]}",
            "metadata" => $"{op} metadata {e["metadata"]?.ToJsonString()}",
            var other => other ?? "?",
        };
        return $"{time}  {text}";
    }

    /// <summary>
    /// A task's events (<c>task_*</c>, and the logs, progress and output of a task) as a local run prints them
    /// (docs/tasks.md): <c>mesh > meshing/reconstruct started (task …)</c>. Null for an event that does not read as one.
    /// </summary>
    private static string? TaskText(JsonObject e)
    {
        try
        {
            return e.Deserialize(Reading.RunEvent) is { } read ? ConsoleEventWriter.Text(read) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Short(string? release) => release is { Length: > 19 } ? release[7..19] : release ?? "?";
}
