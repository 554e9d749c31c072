using Skiff.Core;
using Skiff.Core.Manifests;

namespace Skiff.Build.Environments;

/// <summary>
/// An environment whose digest is known but whose new blobs are still staged outside the store, so a
/// build that fails later puts nothing into it.
/// </summary>
internal sealed record PreparedEnvironment(
    EnvironmentManifest Manifest,
    byte[] ManifestBytes,
    Digest Digest,
    IReadOnlyList<PreparedPackage> Packages)
{
    public long Bytes => Packages.Sum(p => p.Bytes);

    public int PackedCount => Packages.Count(p => p.StagedFile is not null);
}

/// <summary>A package blob: already in the store (<see cref="StagedFile"/> is null) or packed and waiting to be committed.</summary>
internal sealed record PreparedPackage(PackageEntry Entry, long Bytes, string? StagedFile, string IndexKey);
