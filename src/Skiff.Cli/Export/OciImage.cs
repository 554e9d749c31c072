using Skiff.Core;

namespace Skiff.Cli.Export;

/// <summary>
/// An image built by <see cref="ReleaseExporter.BuildAsync"/>: the base's layers (in its layout), Skiff's layers (files in
/// a private folder), the config and the manifest. Written to an archive or pushed to a registry, it is the same image.
/// Disposing it deletes the folder (<see cref="ExportScratch"/>).
/// </summary>
internal sealed class OciImage(
    ExportScratch folder, Digest release, OciBaseImage baseImage, IReadOnlyList<Layer> layers, IReadOnlyList<ExportedLayer> described, byte[] config, byte[] manifest,
    string? experimental)
    : IDisposable
{
    /// <summary>The experimental packages of the release (<c>skiff deploy --exp</c>) as its <c>org.skiff.experimental</c> label names them, or null.</summary>
    public string? Experimental { get; } = experimental;

    public Digest Release { get; } = release;

    public OciBaseImage Base { get; } = baseImage;

    /// <summary>Skiff's own layers: the environment's, then the source.</summary>
    public IReadOnlyList<Layer> Layers { get; } = layers;

    /// <summary>Every layer, the base's first, with what it holds.</summary>
    public IReadOnlyList<ExportedLayer> Described { get; } = described;

    public byte[] Config { get; } = config;

    public byte[] Manifest { get; } = manifest;

    /// <summary>The manifest's digest: what a registry and <c>podman inspect --format {{.Digest}}</c> call the image's digest.</summary>
    public Digest Digest { get; } = Digest.Compute(manifest);

    /// <summary>The config's digest, which podman shows as the image id.</summary>
    public Digest ConfigDigest { get; } = Digest.Compute(config);

    /// <summary>Every blob the manifest names, once each, in its order (layers, then the config), with a way to read it.</summary>
    public IEnumerable<(Digest Digest, long Size, Func<Stream> Open)> Blobs()
    {
        var seen = new HashSet<Digest>();
        foreach (var layer in Described.Where(l => l.Kind == "base"))
        {
            if (seen.Add(layer.Digest))
            {
                var digest = layer.Digest;
                yield return (digest, layer.Size, () => Base.OpenBlob(digest));
            }
        }

        foreach (var layer in Layers)
        {
            if (seen.Add(layer.Digest))
            {
                var file = layer.File;
                yield return (layer.Digest, layer.Size, () => new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan));
            }
        }

        var config = Config;
        yield return (ConfigDigest, config.Length, () => new MemoryStream(config, writable: false));
    }

    public void Dispose() => folder.Dispose();
}
