using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>
/// A named place jobs are deployed to, and what is live there. A location exists from its first
/// deployment on; until one of its deployments goes live it has no live release.
/// </summary>
/// <param name="Name">The location's name, unique and case-sensitive.</param>
/// <param name="LiveDeployment">The deployment serving the location, or null when none ever went live.</param>
/// <param name="LiveRelease">That deployment's release.</param>
/// <param name="DefinitionsJson">What the live version defines, as it reported it.</param>
/// <param name="UpdatedAt">When the location was created or its live deployment last changed.</param>
/// <param name="MemoryLimit">The live deployment's memory limit; null for none.</param>
/// <param name="Replicas">On how many agents the live deployment runs.</param>
/// <param name="Constraints">The labels the live deployment's agents must have, canonical; null for any agent.</param>
internal sealed record LocationRecord(
    string Name,
    string? LiveDeployment,
    Digest? LiveRelease,
    string? DefinitionsJson,
    DateTimeOffset UpdatedAt,
    string? MemoryLimit = null,
    int Replicas = 1,
    string? Constraints = null)
{
    /// <summary>
    /// At most this many runs of the location run at once; the others wait <see cref="RunStatuses.Queued"/>
    /// (docs/run-queue.md). Null for no limit. A setting of the location, kept across deploys.
    /// </summary>
    public int? MaxConcurrent { get; init; }

    /// <summary>The tasks the live version serves (docs/tasks.md), as it reported them; null when it declares none, or nothing is live.</summary>
    public string? TasksJson { get; init; }

    /// <summary>The environment variant of the live deployment (<see cref="DeploymentRecord.Variant"/>); null when nothing is live.</summary>
    public string? Variant { get; init; }

    /// <summary>The experimental packages of the live deployment (<see cref="DeploymentRecord.Experimental"/>); null for none.</summary>
    public string? Experimental { get; init; }

    /// <summary>Whether the location refuses releases with experimental packages (`skiff locations set L --no-exp`); kept across deploys.</summary>
    public bool RefusesExperimental { get; init; }

    /// <summary>The live deployment's <see cref="DeploymentRecord.MinReplicas"/>: null unless it scales with its work (<see cref="Replicas"/> is then its most).</summary>
    public int? MinReplicas { get; init; }

    /// <summary>Where the location's runs execute (<see cref="RunHostings"/>): isolated, a process each, or shared; kept across deploys.</summary>
    public string Runs { get; init; } = RunHostings.Isolated;
}
