using Skiff.Core.Manifests;

namespace Skiff.Core.Materialization;

/// <summary>A release made ready on disk, and what that took.</summary>
/// <param name="Release">Where it is and how to run it.</param>
/// <param name="Manifest">The release manifest.</param>
/// <param name="Packages">The distinct package blobs its environment uses.</param>
/// <param name="PackagesUnpacked">How many of them were unpacked now (the rest were already there).</param>
/// <param name="SourceUnpacked">Whether the source was unpacked now.</param>
internal sealed record MaterializeOutcome(
    MaterializedRelease Release,
    ReleaseManifest Manifest,
    IReadOnlyList<Digest> Packages,
    int PackagesUnpacked,
    bool SourceUnpacked)
{
    /// <summary>Folders that were there but had changed since they were unpacked, and were unpacked again from their blobs.</summary>
    public IReadOnlyList<Digest> Repaired { get; init; } = [];
}
