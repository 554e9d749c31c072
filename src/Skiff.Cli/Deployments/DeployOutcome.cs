using System.Text.Json.Nodes;
using Skiff.Build.Releases;

namespace Skiff.Cli.Deployments;

/// <summary>What a deploy did: the build, and the result as <c>skiff deploy --json</c> prints it (docs/api.md).</summary>
internal sealed record DeployOutcome(BuildResult Build, JsonObject Result)
{
    public bool Live => (string?)Result["outcome"] == "live";

    public string? Deployment => (string?)Result["deployment"];

    /// <summary><c>full</c>, <c>fast</c> or <c>unchanged</c>.</summary>
    public string? Path => (string?)Result["path"];

    public string? Error => (string?)Result["error"];

    public long TotalMilliseconds => (long?)Result["timings_ms"]?["total"] ?? 0;

    public IEnumerable<string?> Jobs => (Result["jobs"] as JsonArray ?? []).Select(j => (string?)j);

    /// <summary>The tasks it serves as a pool; empty for none.</summary>
    public IReadOnlyList<string?> Tasks => [.. (Result["tasks"] as JsonArray ?? []).Select(t => (string?)t)];
}
