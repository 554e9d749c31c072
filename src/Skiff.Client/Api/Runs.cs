using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Skiff.Client.Api;

// The messages of /api/v1/runs.

/// <summary>The body of <c>POST /api/v1/runs</c>: run a job of a location's live release.</summary>
/// <param name="Location">Where.</param>
/// <param name="Job">Which job.</param>
/// <param name="Params">Its parameters by name; left out, their defaults.</param>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record RunRequest(string Location, string Job, JsonObject? Params = null);

/// <summary>The answer of <c>POST /api/v1/runs</c> (201).</summary>
/// <param name="Id">The run's id, <c>r-…</c>.</param>
/// <param name="Location">Where it runs.</param>
/// <param name="Job">Which job.</param>
/// <param name="Release">The release it runs.</param>
/// <param name="Status"><c>running</c>, or <c>queued</c> when its location or job is at its concurrency limit: it starts when a slot frees.</param>
internal sealed record StartedRun([property: JsonPropertyName("run")] string Id, string Location, string Job, string Release, string Status = "running");

/// <summary>A run as the server records it.</summary>
/// <param name="Id">Its id, <c>r-…</c>.</param>
/// <param name="Location">Where it runs.</param>
/// <param name="Release">The release it runs.</param>
/// <param name="Job">Which job.</param>
/// <param name="Params">Its parameters as given.</param>
/// <param name="Status"><c>queued</c>, <c>running</c>, <c>succeeded</c>, <c>failed</c> or <c>canceled</c>.</param>
/// <param name="StartedAt">When it started; while it is queued, when it was requested.</param>
/// <param name="FinishedAt">When it ended.</param>
/// <param name="Reason">Why it failed, when it did outside its ops (an agent gone, a host crashed).</param>
/// <param name="Agent">The agent that runs it.</param>
/// <param name="StartedBy">What started it when no API call did: <c>schedule:JOB</c> for its job's cron schedule.</param>
internal sealed record Run(
    [property: JsonPropertyName("run")] string Id,
    string Location,
    string Release,
    string Job,
    JsonObject Params,
    string Status,
    DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt,
    string? Reason,
    string? Agent,
    string? StartedBy = null)
{
    /// <summary>When it was requested, for a run that went through the run queue (its location or job has a concurrency limit); null otherwise.</summary>
    public DateTimeOffset? QueuedAt { get; init; }

    /// <summary>How long it waited in the queue before it started (or was canceled); null while it waits, and for a run that never queued.</summary>
    public long? QueueWaitMs { get; init; }
}

/// <summary>The answer of <c>POST /api/v1/runs/{id}/cancel</c>.</summary>
/// <param name="Id">The run.</param>
/// <param name="Status">Its status when asked.</param>
/// <param name="Canceled">Whether a cancellation was sent, or a queued run canceled (false: it had ended already).</param>
internal sealed record CanceledRun([property: JsonPropertyName("run")] string Id, string Status, bool Canceled);
