using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Server.Hosting;

namespace Skiff.Server.Blobs;

/// <summary>Opens the blob store a server is configured with: files in its data folder, or an S3 bucket.</summary>
internal static class BlobStores
{
    /// <exception cref="BlobStoreUnavailableException">The S3 bucket cannot be reached or refuses the credentials.</exception>
    public static async Task<IBlobStore> OpenAsync(ServerOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.S3Blobs is { } s3
            ? await S3BlobStore.OpenAsync(s3, Path.Combine(options.DataDirectory, "tmp"), time, cancellationToken).ConfigureAwait(false)
            : new FileBlobStore(options.BlobDirectory, time);
    }

    /// <summary>
    /// gc spares blobs written or touched this recently: they may belong to a deployment not yet registered. Stores
    /// may rely on it (S3BlobStore trusts a blob it saw this recently to be there still).
    /// </summary>
    public static readonly TimeSpan SpareRecentBlobs = TimeSpan.FromHours(1);

    /// <summary>
    /// A deployment takes a blob this server hashed this recently (at upload, an earlier deployment or the scrub) as
    /// intact, instead of reading it again: docs/integrity.md measures what that saves. The scrub re-hashes every blob
    /// more often than this at its default rate on a store of up to about 14 GB.
    /// </summary>
    public static readonly TimeSpan TrustVerified = TimeSpan.FromHours(1);

    /// <summary>How many blobs a deployment hashes at once: hashing is CPU-bound on a file store, a download on S3.</summary>
    public const int HashesAtOnce = 4;

    /// <summary>How many blobs are looked up (or touched) at once.</summary>
    public const int LookupsAtOnce = 16;

    /// <summary>
    /// Deletes partial uploads older than an hour: temp files of a file store, staging objects in S3, which a
    /// killed server or an upload abandoned half way leaves. Stores do it when they open; gc does it too.
    /// </summary>
    public static async Task DeleteStaleUploadsAsync(IBlobStore blobs, TimeProvider time, CancellationToken cancellationToken)
    {
        switch (blobs)
        {
            case FileBlobStore files:
                files.DeleteStaleTempFiles(time.GetUtcNow());
                break;
            case S3BlobStore s3:
                await s3.DeleteStaleStagingAsync(time.GetUtcNow() - S3BlobStore.StaleStagingAge, cancellationToken).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>
    /// When each blob was written (or last touched), null for one the store lacks, looked up side by side: with blobs
    /// in S3 each is a round trip, and a release names a hundred packages.
    /// </summary>
    public static async Task<IReadOnlyDictionary<Digest, DateTimeOffset?>> WrittenAtAsync(IBlobStore blobs, IEnumerable<Digest> digests, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blobs);
        var written = new System.Collections.Concurrent.ConcurrentDictionary<Digest, DateTimeOffset?>();
        await Parallel.ForEachAsync(
            digests.Distinct(),
            new ParallelOptions { MaxDegreeOfParallelism = LookupsAtOnce, CancellationToken = cancellationToken },
            async (digest, ct) => written[digest] = await blobs.GetWrittenAtAsync(digest, ct).ConfigureAwait(false)).ConfigureAwait(false);
        return written;
    }
}
