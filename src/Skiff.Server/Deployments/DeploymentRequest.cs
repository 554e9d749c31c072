namespace Skiff.Server.Deployments;

/// <summary>What the CLI sends to make a release live on a location, with what it did before asking.</summary>
internal sealed record DeploymentRequest(
    string Location,
    string Release,
    string Path,
    int BlobsUploaded,
    long BytesUploaded,
    IReadOnlyDictionary<string, long>? TimingsMs,
    string? Who,
    string? MemoryLimit);
