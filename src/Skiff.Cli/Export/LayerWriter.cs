using System.Formats.Tar;
using System.Security.Cryptography;
using Skiff.Core;
using Skiff.Core.Archives;

namespace Skiff.Cli.Export;

/// <summary>
/// Writes one image layer: an uncompressed tar of folders placed at paths of the image's file system, with the same
/// fixed metadata as Skiff's own archives (sorted entries, one modification time, uid/gid 0, no owner names), so the
/// same files give the same layer digest on every machine and from every folder.
/// </summary>
/// <remarks>
/// Uncompressed (media type <c>…layer.v1.tar</c>, as <c>podman save</c> writes too): a gzip layer's digest would depend on
/// the zlib the .NET runtime bundles (docs/build.md, "Archives"), and the image digest must not. Its diff id is then
/// its digest. GNU entries: a package's own paths fit ustar, but under <c>skiff/packages/&lt;64 hex&gt;/</c> some would
/// not; GNU long names cover them, and its access and change times are set to the fixed time like the rest.
/// </remarks>
internal static class LayerWriter
{
    /// <summary>Mode of every folder: 0755, so a non-root user of the image can enter them.</summary>
    private const UnixFileMode FolderMode = ArchiveWriter.EntryMode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>Writes a layer holding each folder of <paramref name="folders"/> (on disk) at its image path (no leading '/').</summary>
    public static async Task<Layer> WriteAsync(string destinationFile, IEnumerable<(string ImagePath, string Folder)> folders, CancellationToken cancellationToken)
    {
        var entries = new SortedDictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (imagePath, folder) in folders)
        {
            // Every folder above the content gets its own entry, so the layer says what mode it has wherever it is applied.
            var parts = imagePath.Split('/');
            for (var i = 1; i <= parts.Length; i++)
            {
                entries[string.Join('/', parts[..i]) + "/"] = null;
            }

            foreach (var entry in Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(folder, entry).Replace('\\', '/');
                if (Directory.Exists(entry))
                {
                    entries[$"{imagePath}/{relative}/"] = null;
                }
                else
                {
                    entries[$"{imagePath}/{relative}"] = entry;
                }
            }
        }

        var file = new FileStream(destinationFile, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        using var sha256 = SHA256.Create();
        await using (file.ConfigureAwait(false))
        {
            // A hash algorithm as a CryptoStream's transform passes every byte on unchanged: the layer is hashed as it is written.
            var hashing = new CryptoStream(file, sha256, CryptoStreamMode.Write, leaveOpen: true);
            await using (hashing.ConfigureAwait(false))
            {
                var tar = new TarWriter(hashing, TarEntryFormat.Gnu, leaveOpen: true);
                await using (tar.ConfigureAwait(false))
                {
                    foreach (var (path, source) in entries)
                    {
                        await WriteEntryAsync(tar, path, source, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }

        return new Layer(Digest.FromHash(sha256.Hash!), new FileInfo(destinationFile).Length, destinationFile);
    }

    private static async Task WriteEntryAsync(TarWriter tar, string path, string? source, CancellationToken cancellationToken)
    {
        var entry = new GnuTarEntry(source is null ? TarEntryType.Directory : TarEntryType.RegularFile, path)
        {
            Mode = source is null ? FolderMode : ArchiveWriter.EntryMode,
            Uid = 0,
            Gid = 0,
            UserName = string.Empty,
            GroupName = string.Empty,
            ModificationTime = ArchiveWriter.EntryTime,
            AccessTime = ArchiveWriter.EntryTime,
            ChangeTime = ArchiveWriter.EntryTime,
        };
        if (source is null)
        {
            await tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
            return;
        }

        var content = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using (content.ConfigureAwait(false))
        {
            entry.DataStream = content;
            await tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
        }
    }
}

/// <summary>A layer written to a file: its digest (which is also its diff id: it is not compressed) and size.</summary>
internal sealed record Layer(Digest Digest, long Size, string File);
