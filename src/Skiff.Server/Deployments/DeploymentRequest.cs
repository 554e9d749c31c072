namespace Skiff.Server.Deployments;

/// <summary>
/// What a client sends to make a release live on a location, with what it did before asking. It does not say
/// how the release got there: <see cref="Deployer"/> decides the path from what the server holds.
/// </summary>
internal sealed record DeploymentRequest(
    string Location,
    string Release,
    int BlobsUploaded,
    long BytesUploaded,
    IReadOnlyDictionary<string, long>? TimingsMs,
    string? Who,
    string? MemoryLimit)
{
    /// <summary>The git commit the release was built from, as the deploying client saw it; null when it was not built in a git work tree.</summary>
    public string? Commit { get; init; }

    /// <summary>Whether that work tree had changes the commit does not hold; null with no commit.</summary>
    public bool? Dirty { get; init; }

    /// <summary>
    /// The labels the location's agents must have (<c>gpu=h200,zone=a</c>); <c>any</c> (or empty) for none; null
    /// keeps the location's current constraints.
    /// </summary>
    public string? On { get; init; }

    /// <summary>On how many agents the location runs; null keeps the location's current number (one at first).</summary>
    public int? Replicas { get; init; }

    /// <summary>
    /// With <see cref="Replicas"/> as its most, the fewest replicas of a pool that scales with its work (<c>--replicas
    /// MIN..MAX</c>, docs/tasks.md "Scaling a pool"); null with <see cref="Replicas"/> given: a fixed number.
    /// </summary>
    public int? MinReplicas { get; init; }

    /// <summary>
    /// Where the location's runs execute once this deployment is live (<see cref="Metadata.RunHostings"/>); null keeps the
    /// location's own (isolated at first).
    /// </summary>
    public string? Runs { get; init; }
}
