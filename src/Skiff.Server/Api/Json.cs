using System.Text.Json.Nodes;
using Skiff.Server.Metadata;

namespace Skiff.Server.Api;

/// <summary>How records look in the API (docs/api.md).</summary>
internal static class Json
{
    public static JsonObject Deployment(DeploymentRecord d) => new()
    {
        ["deployment"] = d.Id,
        ["location"] = d.Location,
        ["release"] = d.Release.ToString(),
        ["environment"] = d.Environment.ToString(),
        ["source"] = d.Source.ToString(),
        ["path"] = d.Path,
        ["outcome"] = d.Outcome,
        ["error"] = d.Error,
        ["uploaded"] = new JsonObject { ["blobs"] = d.BlobsUploaded, ["bytes"] = d.BytesUploaded },
        ["timings_ms"] = new JsonObject(d.TimingsMs.Select(t => KeyValuePair.Create(t.Key, (JsonNode?)t.Value))),
        ["who"] = d.Who,
        ["created_at"] = d.CreatedAt.ToString("O"),
        ["finished_at"] = d.FinishedAt?.ToString("O"),
        ["rollback_of"] = d.RollbackOf,
        ["memory_limit"] = d.MemoryLimit,
        ["replicas"] = d.Replicas ?? 1,
        ["on"] = d.Constraints,
        ["commit"] = d.Commit,
        ["dirty"] = d.Dirty,
        ["jobs"] = JobNames(d.DefinitionsJson),
    };

    public static JsonObject Run(RunRecord r) => new()
    {
        ["run"] = r.Id,
        ["location"] = r.Location,
        ["release"] = r.Release.ToString(),
        ["job"] = r.Job,
        ["params"] = JsonNode.Parse(r.ParametersJson),
        ["status"] = r.Status,
        ["started_at"] = r.StartedAt.ToString("O"),
        ["finished_at"] = r.FinishedAt?.ToString("O"),
        ["reason"] = r.Reason,
        ["agent"] = r.Agent,
    };

    public static JsonArray JobNames(string? definitionsJson) =>
        definitionsJson is null
            ? []
            : new JsonArray([.. (JsonNode.Parse(definitionsJson) as JsonArray ?? []).Select(j => (JsonNode?)(string?)j?["name"])]);
}
