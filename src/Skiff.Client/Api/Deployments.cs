using System.Text.Json.Serialization;

namespace Skiff.Client.Api;

// The messages of /api/v1/deployments and a location's rollback.

/// <summary>The body of <c>POST /api/v1/deployments</c>: make a stored release live on a location.</summary>
/// <param name="Location">Where; created on its first deployment.</param>
/// <param name="Release">The release manifest's digest; it, its environment and every blob they name must be stored.</param>
/// <param name="Path">Ignored: the server decides the path from what it holds. Older clients send what they saw.</param>
/// <param name="Uploaded">What the client uploaded for this deployment, recorded as given.</param>
/// <param name="TimingsMs">The client's stages (restore, build, pack, upload) in milliseconds, recorded as given.</param>
/// <param name="Who">Who deploys, e.g. <c>ana@laptop</c>.</param>
/// <param name="MemoryLimit">A new memory limit (<c>512MiB</c>; <c>none</c> lifts it); left out, the location keeps its own.</param>
/// <param name="Commit">The git commit the release was built from: 40 or 64 lowercase hex digits.</param>
/// <param name="Dirty">Whether the work tree had changes that commit does not hold.</param>
/// <param name="On">The labels the location's agents must have (<c>gpu=h200,zone=a</c>; <c>any</c> lifts it); left out, the location keeps its own.</param>
/// <param name="Replicas">On how many agents the location runs (1–100); left out, the location keeps its number.</param>
/// <param name="MinReplicas">With <paramref name="Replicas"/> as its most, the fewest of a pool that scales with its work (<c>--replicas MIN..MAX</c>, 0 to <paramref name="Replicas"/>); left out with <paramref name="Replicas"/> given, the number is fixed.</param>
/// <param name="Runs">Where the location's runs execute once this deployment is live: <c>isolated</c> (a process each) or <c>shared</c> (a shared run host per release, docs/agent.md); left out, the location keeps its own.</param>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record DeploymentRequest(
    string Location,
    string Release,
    string? Path = null,
    UploadSummary? Uploaded = null,
    IReadOnlyDictionary<string, long>? TimingsMs = null,
    string? Who = null,
    string? MemoryLimit = null,
    string? Commit = null,
    bool? Dirty = null,
    string? On = null,
    int? Replicas = null,
    int? MinReplicas = null,
    string? Runs = null);

/// <summary>How much a deploy uploaded.</summary>
internal sealed record UploadSummary(int Blobs, long Bytes);

/// <summary>A deployment as the server records it: the answer of a deploy or rollback, and each entry of a location's history.</summary>
/// <param name="Id">Its id, <c>d-…</c>.</param>
/// <param name="Location">Where.</param>
/// <param name="Release">What.</param>
/// <param name="Environment">The release's environment.</param>
/// <param name="Source">The release's source blob.</param>
/// <param name="Path"><c>full</c> (the environment was new to the server), <c>fast</c> (only the source was), <c>unchanged</c> (the release was known already), <c>rollback</c>, or <c>env</c> (the live release activated again with a changed location environment); the server decides it.</param>
/// <param name="Outcome"><c>pending</c>, <c>live</c> or <c>failed</c>.</param>
/// <param name="Error">Why it failed.</param>
/// <param name="Uploaded">What the client said it uploaded.</param>
/// <param name="TimingsMs">Stages in milliseconds: the client's, then <c>activate</c> and <c>total</c>.</param>
/// <param name="Who">Who deployed.</param>
/// <param name="CreatedAt">When it was registered.</param>
/// <param name="FinishedAt">When it went live or failed.</param>
/// <param name="RollbackOf">The deployment whose release a rollback put back.</param>
/// <param name="MemoryLimit">The limit it runs under, or null for none.</param>
/// <param name="Commit">The git commit the release was built from.</param>
/// <param name="Dirty">Whether the work tree had changes that commit does not hold.</param>
/// <param name="Jobs">The names of the jobs it defines, once live.</param>
/// <param name="Live">Only in a location's history: whether this is the deployment serving now.</param>
/// <param name="Replicas">On how many agents it runs.</param>
/// <param name="On">The labels its agents must have, or null for any agent.</param>
/// <param name="EnvChange">Only on a deployment of path <c>env</c>: the change of the location's environment it took live, by names only (docs/env.md).</param>
internal sealed record Deployment(
    [property: JsonPropertyName("deployment")] string Id,
    string Location,
    string Release,
    string Environment,
    string Source,
    string Path,
    string Outcome,
    string? Error,
    UploadSummary Uploaded,
    IReadOnlyDictionary<string, long> TimingsMs,
    string Who,
    DateTimeOffset CreatedAt,
    DateTimeOffset? FinishedAt,
    string? RollbackOf,
    string? MemoryLimit,
    string? Commit,
    bool? Dirty,
    IReadOnlyList<string> Jobs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Live = null,
    int Replicas = 1,
    string? On = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? EnvChange = null)
{
    /// <summary>
    /// The variant of the release's environment (docs/build.md, "Variants"): <c>default</c> for a project without
    /// variants; null for deployments recorded before variants were.
    /// </summary>
    public string? Variant { get; init; }

    /// <summary>
    /// Whether the release carries experimental packages besides its environment (`skiff deploy --exp`, docs/build.md
    /// "Experimental dependencies").
    /// </summary>
    public bool Experimental { get; init; }

    /// <summary>Those packages as <c>Id@Version</c>; empty for none.</summary>
    public IReadOnlyList<string> ExperimentalPackages { get; init; } = [];

    /// <summary>The names of the tasks it serves as a pool (docs/tasks.md), once live; empty for none.</summary>
    public IReadOnlyList<string> Tasks { get; init; } = [];
}

/// <summary>The body of <c>POST /api/v1/locations/{name}/rollback</c>; it may be left out.</summary>
/// <param name="Deployment">The deployment whose release to put back; left out, the last release live before the current one.</param>
/// <param name="Who">Who rolls back.</param>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record RollbackRequest(string? Deployment = null, string? Who = null);

/// <summary>The answer of <c>POST /api/v1/gc</c>.</summary>
/// <param name="KeptReleases">How many releases are still referenced.</param>
/// <param name="Deleted">How many blobs were deleted.</param>
/// <param name="DeletedBytes">Their size.</param>
internal sealed record GarbageCollection(int KeptReleases, int Deleted, long DeletedBytes);
