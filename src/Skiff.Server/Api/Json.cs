using System.Text.Json.Nodes;
using Skiff.Client.Api;
using Skiff.Server.Metadata;

namespace Skiff.Server.Api;

/// <summary>How records look in the API (docs/api.md): the messages in <see cref="Skiff.Client.Api"/>.</summary>
internal static class Json
{
    /// <param name="d">The deployment.</param>
    /// <param name="live">In a location's history, whether it is the one serving now; null elsewhere.</param>
    public static Deployment Deployment(DeploymentRecord d, bool? live = null) => new(
        d.Id,
        d.Location,
        d.Release.ToString(),
        d.Environment.ToString(),
        d.Source.ToString(),
        d.Path,
        d.Outcome,
        d.Error,
        new UploadSummary(d.BlobsUploaded, d.BytesUploaded),
        d.TimingsMs,
        d.Who,
        d.CreatedAt,
        d.FinishedAt,
        d.RollbackOf,
        d.MemoryLimit,
        d.Commit,
        d.Dirty,
        JobNames(d.DefinitionsJson),
        live,
        d.Replicas ?? 1,
        d.Constraints,
        d.EnvChange)
    {
        Variant = d.Variant,
        Experimental = d.Experimental is not null,
        ExperimentalPackages = d.Experimental?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [],
        Tasks = [.. Tasks(d.TasksJson).Select(t => (string?)t?["name"] ?? "")],
    };

    public static Run Run(RunRecord r) => new(
        r.Id,
        r.Location,
        r.Release.ToString(),
        r.Job,
        JsonNode.Parse(r.ParametersJson) as JsonObject ?? [],
        r.Status,
        r.StartedAt,
        r.FinishedAt,
        r.Reason,
        r.Agent,
        r.StartedBy)
    {
        QueuedAt = r.QueuedAt,
        QueueWaitMs = r.QueueWait is { } wait ? (long)wait.TotalMilliseconds : null,
    };

    /// <summary>The limit a job of the definitions declares on its running runs (<c>max_concurrent</c>); null for none, or no such job.</summary>
    public static int? JobMaxConcurrent(string? definitionsJson, string job) =>
        definitionsJson is null
            ? null
            : (JsonNode.Parse(definitionsJson) as JsonArray ?? [])
                .FirstOrDefault(j => (string?)j?["name"] == job)?["max_concurrent"] is JsonValue value && value.TryGetValue<int>(out var limit) && limit > 0
                ? limit
                : null;

    public static IReadOnlyList<string> JobNames(string? definitionsJson) =>
        definitionsJson is null
            ? []
            : [.. (JsonNode.Parse(definitionsJson) as JsonArray ?? []).Select(j => (string?)j?["name"] ?? "")];

    /// <summary>The tasks a version serves as it reported them (docs/code-server-protocol.md); empty when it declares none.</summary>
    public static JsonArray Tasks(string? tasksJson) => tasksJson is null ? [] : JsonNode.Parse(tasksJson) as JsonArray ?? [];
}
