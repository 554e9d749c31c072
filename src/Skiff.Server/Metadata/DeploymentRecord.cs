using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>
/// One release activated, or meant to be activated, on one location: who asked, how the bytes got
/// there, how long each step took and how it ended.
/// </summary>
/// <param name="Id">Chosen by the caller; unique across all locations.</param>
/// <param name="Location">The location it was deployed to.</param>
/// <param name="Release">The release it activates.</param>
/// <param name="Environment">The release's environment digest, kept here so history reads without joins.</param>
/// <param name="Source">The release's source digest, likewise.</param>
/// <param name="Path">How the deploy went: one of <see cref="DeploymentPaths"/>.</param>
/// <param name="BlobsUploaded">Blobs the deploy had to upload (the rest were already stored).</param>
/// <param name="BytesUploaded">Their total size in bytes.</param>
/// <param name="TimingsMs">Milliseconds per step, by step name (for example <c>build</c>, <c>upload</c>, <c>activate</c>).</param>
/// <param name="Who">The person or CI identity that deployed, as the server knows it.</param>
/// <param name="CreatedAt">When the deploy was recorded.</param>
/// <param name="Outcome">One of <see cref="DeploymentOutcomes"/>.</param>
/// <param name="Error">Why the deployment failed, for people; null unless <see cref="Outcome"/> is failed.</param>
/// <param name="DefinitionsJson">What the version reported it defines (jobs, ops), once it loaded.</param>
/// <param name="FinishedAt">When the outcome was decided; null while pending.</param>
/// <param name="RollbackOf">The deployment whose release this one put back, when <see cref="Path"/> is rollback.</param>
/// <param name="MemoryLimit">The memory limit of every process of the location while this deployment is live (canonical, for example <c>512MiB</c>); null for none.</param>
/// <param name="Commit">The git commit the release was built from (as the deploying client saw it); null when not built in a git work tree.</param>
/// <param name="Dirty">Whether that work tree had changes the commit does not hold; null with no commit.</param>
/// <param name="Server">The server process driving it while pending (see <see cref="ServerRecord"/>): when that server stops
/// heartbeating, another fails it instead of leaving it pending. Null for deployments recorded before servers were.</param>
/// <param name="Replicas">On how many agents the location runs while this deployment is live; null for deployments recorded before fleets were (one).</param>
/// <param name="Constraints">The labels an agent must have to host the location while this deployment is live, canonical (<see cref="Skiff.Server.Agents.Placement"/>); null for any agent.</param>
/// <param name="EnvChange">For a deployment of path <see cref="DeploymentPaths.Env"/>, the change of the location's environment it
/// took live, by name only (<c>set DB_URL, API_KEY (secret); unset OLD</c>): never a value.</param>
internal sealed record DeploymentRecord(
    string Id,
    string Location,
    Digest Release,
    Digest Environment,
    Digest Source,
    string Path,
    int BlobsUploaded,
    long BytesUploaded,
    IReadOnlyDictionary<string, long> TimingsMs,
    string Who,
    DateTimeOffset CreatedAt,
    string Outcome,
    string? Error,
    string? DefinitionsJson,
    DateTimeOffset? FinishedAt,
    string? RollbackOf,
    string? MemoryLimit = null,
    string? Commit = null,
    bool? Dirty = null,
    string? Server = null,
    int? Replicas = null,
    string? Constraints = null,
    string? EnvChange = null)
{
    /// <summary>
    /// The tasks the version reported it serves (docs/tasks.md), as the code server listed them, once it loaded; null when
    /// it declares none. A location whose live deployment has tasks is a pool for them.
    /// </summary>
    public string? TasksJson { get; init; }

    /// <summary>
    /// The variant of the release's environment (docs/build.md, "Variants"), read by the server from the environment
    /// manifest; <c>default</c> for a project without variants, null for deployments recorded before variants were.
    /// </summary>
    public string? Variant { get; init; }

    /// <summary>
    /// The experimental packages the release carries besides its environment (`skiff deploy --exp`, docs/build.md),
    /// read by the server from the release manifest, as <c>Id@Version</c> joined by spaces; null for none.
    /// </summary>
    public string? Experimental { get; init; }

    /// <summary>
    /// The fewest replicas of a pool deployed with <c>--replicas MIN..MAX</c> (<see cref="Replicas"/> is then MAX): the
    /// server places it on between the two as its work asks (docs/tasks.md, "Scaling a pool"). Null: a fixed number.
    /// </summary>
    public int? MinReplicas { get; init; }
}
