using System.Globalization;
using System.Text.Json.Nodes;

namespace Skiff.Core.Messaging;

/// <summary>
/// What the parts past the SDK (agent, server, CLI) need to know of the run-event format (docs/events.md):
/// which events end a run, and the <c>run_failed</c> they write themselves when the run's process or agent
/// is gone and cannot report its end.
/// </summary>
internal static class RunEvents
{
    /// <summary>Whether the event is the one that ends its run: exactly one of these is a run's last event.</summary>
    public static bool IsEnd(JsonObject runEvent) =>
        (string?)runEvent["type"] is "run_succeeded" or "run_failed" or "run_canceled";

    /// <summary>A <c>run_failed</c> event; <paramref name="seq"/> null leaves numbering to whoever holds the run's events.</summary>
    public static JsonObject Failed(string runId, long? seq, DateTimeOffset at, string reason, string? job = null, TimeSpan? duration = null) =>
        End("run_failed", runId, seq, at, reason, job, duration);

    /// <summary>A <c>run_canceled</c> event: the server writes it for a run canceled while queued, which no agent ever held.</summary>
    public static JsonObject Canceled(string runId, long seq, DateTimeOffset at, string reason, string job) =>
        End("run_canceled", runId, seq, at, reason, job, TimeSpan.Zero);

    private static JsonObject End(string type, string runId, long? seq, DateTimeOffset at, string reason, string? job, TimeSpan? duration)
    {
        var endEvent = new JsonObject
        {
            ["v"] = 1,
            ["seq"] = seq,
            ["ts"] = at.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffzzz", CultureInfo.InvariantCulture),
            ["run"] = runId,
            ["type"] = type,
            ["job"] = job,
            ["reason"] = reason,
            ["duration_ms"] = duration is { } d ? (long)d.TotalMilliseconds : null,
        };
        foreach (var absent in endEvent.Where(p => p.Value is null).Select(p => p.Key).ToList())
        {
            endEvent.Remove(absent);
        }

        return endEvent;
    }
}
