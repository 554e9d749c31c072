using System.Formats.Tar;
using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Core.Archives;

namespace Skiff.Cli.Export;

/// <summary>
/// Writes an OCI image archive (a tar of an OCI image layout, image-spec v1.1): <c>oci-layout</c>, <c>index.json</c> and
/// <c>blobs/sha256/…</c>, entries sorted, with fixed metadata. Written here rather than through a container library: the
/// format is small (three JSON documents and the layers), and every byte of it must be Skiff's to keep deterministic.
/// </summary>
internal static class OciImageWriter
{
    public const string LayerMediaType = "application/vnd.oci.image.layer.v1.tar";
    public const string ManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
    public const string ConfigMediaType = "application/vnd.oci.image.config.v1+json";
    public const string IndexMediaType = "application/vnd.oci.image.index.v1+json";

    /// <summary>JSON as System.Text.Json writes it by default (compact); the documents are built in a fixed key order.</summary>
    public static byte[] Serialize(JsonNode node) => JsonSerializer.SerializeToUtf8Bytes(node);

    /// <summary>A descriptor of a blob (OCI image-spec, descriptor.md), keys in the spec's order.</summary>
    public static JsonObject Descriptor(string mediaType, Digest digest, long size) => new()
    {
        ["mediaType"] = mediaType,
        ["digest"] = digest.ToString(),
        ["size"] = size,
    };

    /// <summary>
    /// Writes the archive to <paramref name="destination"/>: the base's layers (copied from <paramref name="baseImage"/>,
    /// which checked them), then <paramref name="layers"/>, then the config, manifest and
    /// index.
    /// </summary>
    public static async Task WriteArchiveAsync(
        Stream destination,
        OciBaseImage baseImage,
        IReadOnlyList<Layer> layers,
        byte[] config,
        byte[] manifest,
        byte[] index,
        CancellationToken cancellationToken)
    {
        // Every blob by digest, once (a layer may repeat; the tar must not); the tar is sorted by path.
        var blobs = new SortedDictionary<string, Func<Stream>>(StringComparer.Ordinal);
        foreach (var layer in baseImage.Layers)
        {
            var digest = Digest.Parse((string)layer["digest"]!);
            blobs[$"blobs/sha256/{digest.Hex}"] = () => baseImage.OpenBlob(digest);
        }

        foreach (var layer in layers)
        {
            blobs[$"blobs/sha256/{layer.Digest.Hex}"] = () => File.OpenRead(layer.File);
        }

        foreach (var document in (byte[][])[config, manifest])
        {
            blobs[$"blobs/sha256/{Digest.Compute(document).Hex}"] = () => new MemoryStream(document);
        }

        var tar = new TarWriter(destination, TarEntryFormat.Ustar, leaveOpen: true);
        await using (tar.ConfigureAwait(false))
        {
            await WriteFolderAsync(tar, "blobs/", cancellationToken).ConfigureAwait(false);
            await WriteFolderAsync(tar, "blobs/sha256/", cancellationToken).ConfigureAwait(false);
            foreach (var (path, open) in blobs)
            {
                var stream = open();
                await using (stream.ConfigureAwait(false))
                {
                    await WriteFileAsync(tar, path, stream, cancellationToken).ConfigureAwait(false);
                }
            }

            await WriteFileAsync(tar, "index.json", new MemoryStream(index), cancellationToken).ConfigureAwait(false);
            await WriteFileAsync(tar, "oci-layout", new MemoryStream("""{"imageLayoutVersion":"1.0.0"}"""u8.ToArray()), cancellationToken).ConfigureAwait(false);
        }
    }

    private static Task WriteFolderAsync(TarWriter tar, string path, CancellationToken cancellationToken) =>
        tar.WriteEntryAsync(
            new UstarTarEntry(TarEntryType.Directory, path)
            {
                Mode = ArchiveWriter.EntryMode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute,
                ModificationTime = ArchiveWriter.EntryTime,
                UserName = string.Empty,
                GroupName = string.Empty,
            },
            cancellationToken);

    private static Task WriteFileAsync(TarWriter tar, string path, Stream content, CancellationToken cancellationToken) =>
        tar.WriteEntryAsync(
            new UstarTarEntry(TarEntryType.RegularFile, path)
            {
                Mode = ArchiveWriter.EntryMode,
                ModificationTime = ArchiveWriter.EntryTime,
                UserName = string.Empty,
                GroupName = string.Empty,
                DataStream = content,
            },
            cancellationToken);
}
