using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Skiff.Core.Manifests;

namespace Skiff.Cli.Export;

/// <summary>
/// How a release's packages are grouped into image layers, so that a one-package bump changes one small layer and
/// every other environment layer keeps its digest (and is neither pushed nor pulled again):
/// <list type="bullet">
/// <item>a package of at least <see cref="OwnLayerBytes"/> unpacked gets a layer of its own (the largest
/// <see cref="MaxOwnLayers"/> of them, so the image stays well under overlayfs's limit of layers);</item>
/// <item>every other package goes into one of <see cref="Buckets"/> layers, chosen by a hash of its id alone, so a new
/// version of it lands in the same bucket; empty buckets are left out.</item>
/// </list>
/// Known edges: a package whose new version crosses the size threshold moves between its own layer and a bucket (two
/// layers change), and adding or removing a package changes its bucket.
/// </summary>
internal static class LayerPlan
{
    public const long OwnLayerBytes = 1024 * 1024;

    public const int MaxOwnLayers = 40;

    public const int Buckets = 8;

    /// <summary>The packages in layer order: own layers by package id, then the buckets by number.</summary>
    public static IReadOnlyList<PackageGroup> Group(IReadOnlyList<(PackageEntry Package, long Bytes)> packages)
    {
        // Each blob once: two entries can share one (the same package under two ids does not happen, but the blob is the unit).
        var distinct = packages.DistinctBy(p => p.Package.Blob).ToList();
        var own = distinct
            .Where(p => p.Bytes >= OwnLayerBytes)
            .OrderByDescending(p => p.Bytes).ThenBy(p => p.Package.Id, StringComparer.Ordinal)
            .Take(MaxOwnLayers)
            .Select(p => p.Package)
            .ToHashSet();
        var groups = own
            .OrderBy(p => p.Id, StringComparer.Ordinal)
            .Select(p => new PackageGroup($"package {p.Id} {p.Version}", [p]))
            .ToList();
        groups.AddRange(distinct
            .Select(p => p.Package)
            .Where(p => !own.Contains(p))
            .GroupBy(p => Bucket(p.Id))
            .OrderBy(g => g.Key)
            .Select(g => new PackageGroup(
                $"packages, bucket {g.Key} of {Buckets}: {string.Join(", ", g.OrderBy(p => p.Id, StringComparer.Ordinal).Select(p => $"{p.Id} {p.Version}"))}",
                [.. g.OrderBy(p => p.Blob)])));
        return groups;
    }

    /// <summary>A bucket by the package id as NuGet compares it (case-insensitively), with a hash whose values never change (not string.GetHashCode, which is randomized per process).</summary>
    private static int Bucket(string id) =>
        (int)(BinaryPrimitives.ReadUInt32BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes(id.ToLowerInvariant()))) % Buckets);
}

/// <summary>The packages of one layer, and what the image's history says about it.</summary>
internal sealed record PackageGroup(string Description, IReadOnlyList<PackageEntry> Packages);
