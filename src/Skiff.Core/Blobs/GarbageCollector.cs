using Skiff.Core.Manifests;

namespace Skiff.Core.Blobs;

/// <summary>
/// Deletes every blob that no kept release reaches: a release reaches its manifest, its environment
/// manifest, every package blob the environment lists, and its source blob.
/// </summary>
/// <remarks>
/// A build puts its blobs before the release manifest that names them, so a collection that runs while a
/// build writes into the same store could delete blobs the new release needs. Callers pass
/// <c>spareWrittenAfter</c> to spare recent blobs (the server spares those written or reported present within the hour).
/// </remarks>
internal static class GarbageCollector
{
    public sealed record Result(int Kept, int Deleted, long DeletedBytes);

    /// <param name="store">The store to clean.</param>
    /// <param name="keptReleases">The releases to keep, with everything they reach.</param>
    /// <param name="cancellationToken">Stops the collection between blobs.</param>
    /// <param name="spareWrittenAfter">Keeps blobs written or touched after this too, for example recent uploads of
    /// a deployment not yet registered.</param>
    public static async Task<Result> CollectAsync(IBlobStore store, IEnumerable<Digest> keptReleases, CancellationToken cancellationToken, DateTimeOffset? spareWrittenAfter = null)
    {
        var reachable = new HashSet<Digest>();
        foreach (var release in keptReleases)
        {
            if (!reachable.Add(release))
            {
                continue;
            }

            // Loading verifies the manifests: a damaged root stops the collection before anything is deleted.
            var manifest = await ManifestLoader.LoadReleaseAsync(store, release, cancellationToken).ConfigureAwait(false);
            reachable.Add(manifest.Source);
            reachable.UnionWith(manifest.ExperimentalBlobs());
            if (reachable.Add(manifest.Environment))
            {
                var environment = await ManifestLoader.LoadEnvironmentAsync(store, manifest.Environment, cancellationToken).ConfigureAwait(false);
                reachable.UnionWith(environment.Packages.Select(p => p.Blob));
            }
        }

        var unreachable = new List<Digest>();
        await foreach (var blob in store.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            if (!reachable.Contains(blob))
            {
                unreachable.Add(blob);
            }
        }

        var deletedBytes = 0L;
        var deleted = 0;
        foreach (var blob in unreachable)
        {
            if (spareWrittenAfter is { } after
                && await store.GetWrittenAtAsync(blob, cancellationToken).ConfigureAwait(false) is { } written
                && written > after)
            {
                continue;
            }

            var length = await store.GetLengthAsync(blob, cancellationToken).ConfigureAwait(false) ?? 0;
            if (await store.DeleteAsync(blob, cancellationToken).ConfigureAwait(false))
            {
                deleted++;
                deletedBytes += length;
            }
        }

        return new Result(reachable.Count, deleted, deletedBytes);
    }
}
