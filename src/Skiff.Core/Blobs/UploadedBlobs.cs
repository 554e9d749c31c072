using Skiff.Core.Archives;
using Skiff.Core.Manifests;

namespace Skiff.Core.Blobs;

/// <summary>
/// Puts blobs that arrive from outside (uploads to the server) into a store only after checking that the
/// bytes match their digest and are something a Skiff blob can be: a safe archive (package and source
/// blobs) or a manifest in canonical form. A refused blob leaves the store exactly as it was.
/// </summary>
internal static class UploadedBlobs
{
    private const int MaxManifestBytes = 16 * 1024 * 1024;

    /// <exception cref="BlobTooLargeException">The content is longer than <paramref name="maxBytes"/>.</exception>
    /// <exception cref="BlobIntegrityException">The bytes do not match <paramref name="expected"/>.</exception>
    /// <exception cref="UnsafeArchiveException">The bytes are an archive the reader refuses.</exception>
    /// <exception cref="InvalidManifestException">The bytes are neither an archive nor a canonical manifest.</exception>
    public static async Task PutAsync(IBlobStore store, Digest expected, Stream content, long maxBytes, ArchiveLimits limits, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(content);

        // Staged beside a file store (same file system), so the checked file is renamed into place, not copied;
        // another store reads the checked file from where it was staged.
        var fileStore = store as FileBlobStore;
        var staged = fileStore?.NewTempPath() ?? Path.Combine(Path.GetTempPath(), $"skiff-upload-{Guid.NewGuid():N}.tmp");
        try
        {
            var file = new FileStream(staged, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                await ReadCheckedAsync(file, expected, content, maxBytes, limits, store.Location, cancellationToken).ConfigureAwait(false);
                if (fileStore is null)
                {
                    // The store hashes again as it stores, so the bytes checked here are the bytes it keeps.
                    file.Position = 0;
                    await store.PutAsync(expected, file, cancellationToken).ConfigureAwait(false);
                    return;
                }
            }

            var stored = await fileStore.ImportFileAsync(staged, cancellationToken).ConfigureAwait(false);
            if (stored != expected)
            {
                throw BlobIntegrityException.ForPut(expected, stored, store.Location);
            }
        }
        finally
        {
            File.Delete(staged);
        }
    }

    /// <summary>
    /// Checks content exactly as <see cref="PutAsync"/> does, without storing it: for a blob that reaches its
    /// store another way (a pre-signed upload, which the store copies into place only after this check).
    /// </summary>
    /// <remarks><paramref name="storeLocation"/> is where the blob was to be stored, for messages.</remarks>
    /// <exception cref="BlobTooLargeException">The content is longer than <paramref name="maxBytes"/>.</exception>
    /// <exception cref="BlobIntegrityException">The bytes do not match <paramref name="expected"/>.</exception>
    /// <exception cref="UnsafeArchiveException">The bytes are an archive the reader refuses.</exception>
    /// <exception cref="InvalidManifestException">The bytes are neither an archive nor a canonical manifest.</exception>
    public static async Task CheckAsync(Digest expected, Stream content, long maxBytes, ArchiveLimits limits, string storeLocation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var path = Path.Combine(Path.GetTempPath(), $"skiff-check-{Guid.NewGuid():N}.tmp");
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous | FileOptions.DeleteOnClose);
        if (!OperatingSystem.IsWindows())
        {
            // Unlinked while open: the bytes stay readable through the handle, and a server killed mid-check leaves
            // no file behind (DeleteOnClose alone deletes on close, which a kill -9 never reaches).
            File.Delete(path);
        }

        await using (file.ConfigureAwait(false))
        {
            await ReadCheckedAsync(file, expected, content, maxBytes, limits, storeLocation, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Copies <paramref name="content"/> into <paramref name="file"/> and checks size, digest and content.</summary>
    private static async Task ReadCheckedAsync(FileStream file, Digest expected, Stream content, long maxBytes, ArchiveLimits limits, string storeLocation, CancellationToken cancellationToken)
    {
        var buffer = new byte[1 << 16];
        int read;
        while ((read = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (file.Length + read > maxBytes)
            {
                throw new BlobTooLargeException(expected, maxBytes);
            }

            await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
        }

        file.Position = 0;
        var actual = await Digest.ComputeAsync(file, cancellationToken).ConfigureAwait(false);
        if (actual != expected)
        {
            throw BlobIntegrityException.ForPut(expected, actual, storeLocation);
        }

        file.Position = 0;
        await CheckContentAsync(expected, file, limits, cancellationToken).ConfigureAwait(false);
    }

    private static async Task CheckContentAsync(Digest digest, FileStream file, ArchiveLimits limits, CancellationToken cancellationToken)
    {
        var magic = new byte[2];
        var read = await file.ReadAsync(magic, cancellationToken).ConfigureAwait(false);
        file.Position = 0;
        if (read == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
        {
            await ArchiveReader.ListAsync(file, $"blob {digest}", limits, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (file.Length > MaxManifestBytes)
        {
            throw new InvalidManifestException($"blob {digest}", "it is neither an archive nor small enough to be a manifest");
        }

        var bytes = new byte[file.Length];
        await file.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
        var canonical = bytes.AsSpan().StartsWith("{\"schema\":\"skiff.release/"u8)
            ? ReleaseManifest.FromBytes(bytes, $"blob {digest}").ToBytes()
            : EnvironmentManifest.FromBytes(bytes, $"blob {digest}").ToBytes();
        if (!canonical.AsSpan().SequenceEqual(bytes))
        {
            throw new InvalidManifestException($"blob {digest}", "it is not in canonical form (as `skiff build` writes it)");
        }
    }
}
