using Skiff.Core.Archives;

namespace Skiff.Core.Blobs;

/// <summary>
/// Puts archive blobs (package and source blobs) into a store only after checking both that the bytes
/// match their digest and that they are a safe archive, so a store never holds a blob that would be
/// refused when it is unpacked. Used wherever archives arrive from outside: uploads to the server.
/// </summary>
internal static class ArchiveBlobs
{
    /// <exception cref="BlobIntegrityException">The bytes do not match <paramref name="expected"/>.</exception>
    /// <exception cref="UnsafeArchiveException">The bytes are not a safe skiff archive.</exception>
    public static async Task PutAsync(IBlobStore store, Digest expected, Stream content, ArchiveLimits limits, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(content);

        // The content is staged once so it can be both read as an archive and hashed; the store is not
        // touched until both checks passed, so a rejected blob leaves it exactly as it was.
        var staged = Path.Combine(Path.GetTempPath(), $"skiff-archive-{Guid.NewGuid():N}.tmp");
        try
        {
            var file = new FileStream(staged, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 1 << 16, FileOptions.Asynchronous | FileOptions.DeleteOnClose);
            await using (file.ConfigureAwait(false))
            {
                await content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                file.Position = 0;
                var actual = await Digest.ComputeAsync(file, cancellationToken).ConfigureAwait(false);
                if (actual != expected)
                {
                    throw BlobIntegrityException.ForPut(expected, actual, StoreName(store));
                }

                file.Position = 0;
                await ArchiveReader.ListAsync(file, $"blob {expected}", limits, cancellationToken).ConfigureAwait(false);
                file.Position = 0;
                await store.PutAsync(expected, file, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            File.Delete(staged);
        }
    }

    private static string StoreName(IBlobStore store) => store is FileBlobStore files ? files.Root : store.GetType().Name;
}
