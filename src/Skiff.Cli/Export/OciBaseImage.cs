using System.Formats.Tar;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Core.Archives;

namespace Skiff.Cli.Export;

/// <summary>
/// The base image of an export, read from an OCI image layout: a folder (<c>oci-layout</c>, <c>index.json</c>,
/// <c>blobs/sha256/…</c>) or a tar of one (<c>podman save --format oci-archive</c>, <c>skopeo copy … oci-archive:</c>).
/// An archive is unpacked into a private folder first. Every blob taken from it is checked against its digest.
/// </summary>
internal sealed class OciBaseImage
{
    private readonly string _layout;

    private OciBaseImage(string layout, JsonObject config, IReadOnlyList<JsonObject> layers)
    {
        _layout = layout;
        Config = config;
        Layers = layers;
    }

    /// <summary>The base's image configuration (architecture, os, config, rootfs, history).</summary>
    public JsonObject Config { get; }

    /// <summary>The base's layer descriptors, copied into the new manifest as they are.</summary>
    public IReadOnlyList<JsonObject> Layers { get; }

    /// <summary>Reads the base at <paramref name="path"/>; an archive is unpacked under <paramref name="scratch"/>.</summary>
    /// <exception cref="BaseImageException">It is not an OCI layout or archive, or holds no single image for this platform.</exception>
    public static async Task<OciBaseImage> OpenAsync(string path, string scratch, CancellationToken cancellationToken)
    {
        string layout;
        if (Directory.Exists(path))
        {
            layout = path;
        }
        else if (File.Exists(path))
        {
            layout = Path.Combine(scratch, "base");
            await UnpackAsync(path, layout, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            throw new BaseImageException(path, "does not exist");
        }

        if (!File.Exists(Path.Combine(layout, "oci-layout")) || !File.Exists(Path.Combine(layout, "index.json")))
        {
            throw new BaseImageException(path, "is not an OCI image layout (it has no oci-layout and index.json; a `docker save` archive is not one: use `podman save --format oci-archive` or `skopeo copy … oci-archive:FILE`)");
        }

        // Read through an image without config yet: its blobs are what the rest is found in.
        var image = new OciBaseImage(layout, new JsonObject(), []);
        var manifest = await image.FindManifestAsync(path, Json(path, await File.ReadAllBytesAsync(Path.Combine(layout, "index.json"), cancellationToken).ConfigureAwait(false), "index.json"), cancellationToken).ConfigureAwait(false);
        if ((string?)manifest["config"]?["digest"] is not { } configDigest)
        {
            throw new BaseImageException(path, "has a manifest without a config");
        }

        var config = Json(path, await image.ReadBlobAsync(path, configDigest, cancellationToken).ConfigureAwait(false), "its config");
        var layers = manifest["layers"]?.AsArray().Select(l => l!.AsObject()).ToList() ?? [];
        if (config["rootfs"]?["diff_ids"]?.AsArray().Count != layers.Count)
        {
            throw new BaseImageException(path, $"has {layers.Count} layers but its config lists {config["rootfs"]?["diff_ids"]?.AsArray().Count ?? 0} diff ids");
        }

        foreach (var layer in layers)
        {
            await image.CheckBlobAsync(path, (string?)layer["digest"] ?? "", cancellationToken).ConfigureAwait(false);
        }

        return new OciBaseImage(layout, config, layers);
    }

    /// <summary>Hashes a layer of the base before it is copied into an image: a damaged base fails here, by name.</summary>
    private async Task CheckBlobAsync(string path, string digestText, CancellationToken cancellationToken)
    {
        if (!Digest.TryParse(digestText, out var digest))
        {
            throw new BaseImageException(path, $"names a layer '{digestText}' that is not a sha256 digest");
        }

        Digest actual;
        try
        {
            var blob = OpenBlob(digest);
            await using (blob.ConfigureAwait(false))
            {
                actual = await Digest.ComputeAsync(blob, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new BaseImageException(path, $"lacks its layer {digest}");
        }

        if (actual != digest)
        {
            throw new BaseImageException(path, $"has a layer {digest} whose bytes hash to {actual}");
        }
    }

    /// <summary>Opens a blob of the base for copying (its layers were checked when the base was opened).</summary>
    public FileStream OpenBlob(Digest digest) =>
        new(Path.Combine(_layout, "blobs", "sha256", digest.Hex), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);

    private async Task<byte[]> ReadBlobAsync(string path, string digestText, CancellationToken cancellationToken)
    {
        if (!Digest.TryParse(digestText, out var digest))
        {
            throw new BaseImageException(path, $"names a blob '{digestText}' that is not a sha256 digest");
        }

        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(Path.Combine(_layout, "blobs", "sha256", digest.Hex), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new BaseImageException(path, $"lacks its blob {digest}");
        }

        if (Digest.Compute(bytes) is var actual && actual != digest)
        {
            throw new BaseImageException(path, $"has a blob {digest} whose bytes hash to {actual}");
        }

        return bytes;
    }

    /// <summary>The one image manifest of the layout, through nested indexes; several only when one is for this platform.</summary>
    private async Task<JsonObject> FindManifestAsync(string path, JsonObject index, CancellationToken cancellationToken)
    {
        var candidates = index["manifests"]?.AsArray().Select(m => m!.AsObject()).ToList() ?? [];
        if (candidates.Count > 1)
        {
            var architecture = RuntimeInformation.OSArchitecture switch
            {
                Architecture.X64 => "amd64",
                Architecture.Arm64 => "arm64",
                var other => other.ToString().ToLowerInvariant(),
            };
            candidates = [.. candidates.Where(m => (string?)m["platform"]?["os"] == "linux" && (string?)m["platform"]?["architecture"] == architecture)];
        }

        if (candidates is not [var chosen])
        {
            throw new BaseImageException(path, $"holds {(candidates.Count == 0 ? "no image" : "several images")} for this platform; give a layout or archive of exactly one image");
        }

        var bytes = await ReadBlobAsync(path, (string?)chosen["digest"] ?? "", cancellationToken).ConfigureAwait(false);
        var found = Json(path, bytes, "a manifest");
        return (string?)chosen["mediaType"] switch
        {
            "application/vnd.oci.image.index.v1+json" => await FindManifestAsync(path, found, cancellationToken).ConfigureAwait(false),
            "application/vnd.oci.image.manifest.v1+json" or null when found["layers"] is not null => found,
            var other => throw new BaseImageException(path, $"has a manifest of type '{other}'; only OCI image manifests are supported (convert it with `skopeo copy --format oci`)"),
        };
    }

    private static JsonObject Json(string path, byte[] bytes, string what)
    {
        try
        {
            return JsonNode.Parse(bytes)?.AsObject() ?? throw new BaseImageException(path, $"has an empty {what}");
        }
        catch (Exception exception) when (exception is System.Text.Json.JsonException or InvalidOperationException)
        {
            throw new BaseImageException(path, $"has a {what} that is not a JSON object ({exception.Message})");
        }
    }

    /// <summary>Unpacks an OCI archive: only the files of a layout, at safe paths; anything else is refused.</summary>
    private static async Task UnpackAsync(string archive, string destination, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(destination);
        var file = File.OpenRead(archive);
        await using (file.ConfigureAwait(false))
        {
            TarReader reader;
            try
            {
                reader = new TarReader(file);
            }
            catch (Exception exception) when (exception is InvalidDataException or FormatException)
            {
                throw new BaseImageException(archive, $"is not a tar archive ({exception.Message})");
            }

            await using (reader.ConfigureAwait(false))
            {
                while (await NextAsync(reader, archive, cancellationToken).ConfigureAwait(false) is { } entry)
                {
                    var name = entry.Name.StartsWith("./", StringComparison.Ordinal) ? entry.Name[2..] : entry.Name;
                    name = name.TrimEnd('/');
                    if (entry.EntryType is TarEntryType.Directory || name.Length == 0)
                    {
                        continue;
                    }

                    if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                        || ArchivePath.FindProblem(name) is not null
                        || !(name is "oci-layout" or "index.json" || (name.StartsWith("blobs/sha256/", StringComparison.Ordinal) && Digest.TryParseHex(name["blobs/sha256/".Length..], out _))))
                    {
                        continue;
                    }

                    var target = Path.Combine(destination, name);
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    await entry.ExtractToFileAsync(target, overwrite: true, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    private static async Task<TarEntry?> NextAsync(TarReader reader, string archive, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new BaseImageException(archive, $"is not a readable tar archive ({exception.Message})");
        }
    }
}

/// <summary>The base image given to <c>skiff export</c> cannot be used.</summary>
internal sealed class BaseImageException(string path, string problem)
    : SkiffException($"the base image {path} {problem}. Build one with scripts/oci-base.sh, or save one with `podman save --format oci-archive -o base.tar IMAGE`.");
