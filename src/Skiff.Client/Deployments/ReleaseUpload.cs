using Skiff.Core;

namespace Skiff.Client.Deployments;

/// <summary>The blobs a release needs on the server, and which of them it lacks: what <see cref="DeployPlan"/> uploads.</summary>
/// <param name="Release">The release manifest.</param>
/// <param name="Environment">Its environment manifest.</param>
/// <param name="Source">Its source blob.</param>
/// <param name="Packages">The package archives the environment names.</param>
/// <param name="Missing">The blobs the server said it lacks.</param>
/// <param name="MissingBytes">Their size in the local store.</param>
/// <param name="Direct">From a server with blobs in S3: where each missing blob goes instead of the server.</param>
internal sealed record ReleaseUpload(
    Digest Release,
    Digest Environment,
    Digest Source,
    IReadOnlySet<Digest> Packages,
    IReadOnlyList<Digest> Missing,
    long MissingBytes,
    IReadOnlyDictionary<Digest, DirectUpload> Direct)
{
    /// <summary>Every blob of the release, each once.</summary>
    public IReadOnlyList<Digest> All => [.. new[] { Release, Environment, Source }.Concat(Packages).Distinct()];
}
