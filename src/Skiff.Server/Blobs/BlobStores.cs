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
}
