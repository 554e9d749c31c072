using System.Text;
using System.Text.Json.Nodes;
using Skiff.Cli.Export;
using Skiff.Core;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Commands;

/// <summary>
/// How `skiff export` lays a release into image layers (docs/export.md): a one-package bump changes one small layer and
/// leaves every other layer's digest alone. Releases made directly in a store, with packages of chosen sizes, and a
/// minimal base image layout; no container tool is needed for this.
/// </summary>
public sealed class ExportLayerTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task A_one_package_bump_changes_exactly_the_layer_that_holds_that_package()
    {
        var store = new FileBlobStore(_workspace.PathTo("store"));
        var basePath = await WriteBaseLayoutAsync(_workspace.PathTo("base"));
        // Twelve small packages (bucketed by id) and one over a MiB (a layer of its own).
        var packages = Enumerable.Range(1, 12).Select(i => ($"Some.Package{i}", "1.0.0", 2_000 + i)).Append(("Big.Package", "1.0.0", 1_200_000)).ToList();

        var before = await ExportAsync(store, basePath, packages, "first");
        var smallBump = await ExportAsync(store, basePath, [.. packages.Select(p => p.Item1 == "Some.Package5" ? (p.Item1, "1.0.1", p.Item3 + 7) : p)], "small");
        var bigBump = await ExportAsync(store, basePath, [.. packages.Select(p => p.Item1 == "Big.Package" ? (p.Item1, "2.0.0", p.Item3 + 9) : p)], "big");

        var environment = before.Layers.Where(l => l.Kind == "environment").ToList();
        environment.Count.ShouldBeGreaterThan(2, "the small packages are spread over several buckets");
        environment.Count.ShouldBeLessThanOrEqualTo(LayerPlan.Buckets + 1);
        environment.Single(l => l.Description.Contains("package Big.Package 1.0.0", StringComparison.Ordinal)).Size.ShouldBeGreaterThan(1_200_000);

        foreach (var (bumped, package) in new[] { (smallBump, "Some.Package5 1.0.1"), (bigBump, "Big.Package 2.0.0") })
        {
            bumped.Layers.Count.ShouldBe(before.Layers.Count);
            var changed = Enumerable.Range(0, before.Layers.Count).Where(i => before.Layers[i].Digest != bumped.Layers[i].Digest).ToList();
            changed.Count.ShouldBe(1, $"bumping {package} changed layers {string.Join(", ", changed)}");
            bumped.Layers[changed[0]].Kind.ShouldBe("environment");
            bumped.Layers[changed[0]].Description.ShouldContain(package);
            bumped.Image.ShouldNotBe(before.Image);
        }

        // The small package's layer is small: a bump moves kilobytes, not the environment.
        var smallChanged = smallBump.Layers.First(l => l.Description.Contains("Some.Package5 1.0.1", StringComparison.Ordinal));
        smallChanged.Size.ShouldBeLessThan(64 * 1024);
    }

    [Fact]
    public async Task Exporting_the_same_release_again_gives_the_same_bytes_and_a_bad_base_is_refused_by_name()
    {
        var store = new FileBlobStore(_workspace.PathTo("store"));
        var basePath = await WriteBaseLayoutAsync(_workspace.PathTo("base"));
        List<(string, string, int)> packages = [("Some.Package1", "1.0.0", 3_000), ("Some.Package2", "1.0.0", 5_000)];

        var first = await ExportAsync(store, basePath, packages, "again-1");
        var second = await ExportAsync(store, basePath, packages, "again-2");

        second.Image.ShouldBe(first.Image);
        (await File.ReadAllBytesAsync(second.Archive)).ShouldBe(await File.ReadAllBytesAsync(first.Archive));
        var notALayout = Directory.CreateDirectory(_workspace.PathTo("not-a-layout")).FullName;
        var refused = await Should.ThrowAsync<BaseImageException>(() =>
            ReleaseExporter.BuildAsync(store, first.Release, notALayout, CancellationToken.None));
        refused.Message.ShouldContain(notALayout);
        refused.Message.ShouldContain("is not an OCI image layout");
    }

    private async Task<(Digest Release, Digest Image, string Archive, IReadOnlyList<ExportedLayer> Layers)> ExportAsync(
        FileBlobStore store, string basePath, IReadOnlyList<(string Id, string Version, int Bytes)> packages, string name)
    {
        var entries = new List<PackageEntry>();
        foreach (var (id, version, bytes) in packages)
        {
            var blob = await PutArchiveAsync(store, name, new Dictionary<string, byte[]>
            {
                [$"lib/net10.0/{id}.dll"] = Content($"{id} {version}", bytes),
            });
            entries.Add(new PackageEntry(id, version, "", blob));
        }

        var environment = await store.PutAsync(new MemoryStream(EnvironmentManifest.Create("net10.0", "linux-x64", ["Microsoft.NETCore.App"], "default", entries).ToBytes()), CancellationToken.None);
        var source = await PutArchiveAsync(store, name, new Dictionary<string, byte[]>
        {
            ["App.dll"] = Content("the app", 4_000),
            ["App.deps.json"] = "{}"u8.ToArray(),
            ["App.runtimeconfig.json"] = "{}"u8.ToArray(),
        });
        var release = await store.PutAsync(new MemoryStream(ReleaseManifest.Create(environment, source, "App.dll", null).ToBytes()), CancellationToken.None);
        using var image = await ReleaseExporter.BuildAsync(store, release, basePath, CancellationToken.None);
        // The exporter writes into a folder that exists (skiff export checks --oci before it builds); it creates none.
        var folder = Directory.CreateDirectory(_workspace.PathTo("out", name)).FullName;
        var archive = await ReleaseExporter.WriteArchiveAsync(image, Path.Combine(folder, "image.tar"), "test:tag", CancellationToken.None);
        return (release, image.Digest, archive.Path, image.Described);
    }

    /// <summary>Bytes that differ by <paramref name="seed"/> and do not compress away, as assemblies do not.</summary>
    private static byte[] Content(string seed, int bytes)
    {
        var content = new byte[bytes];
        new Random(BitConverter.ToInt32(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(seed)))).NextBytes(content);
        return content;
    }

    private async Task<Digest> PutArchiveAsync(FileBlobStore store, string name, IReadOnlyDictionary<string, byte[]> files)
    {
        var folder = Directory.CreateDirectory(_workspace.PathTo("files", name, Guid.NewGuid().ToString("N"))).FullName;
        var archiveFiles = new List<ArchiveFile>();
        foreach (var (path, content) in files)
        {
            var onDisk = Path.Combine(folder, path);
            Directory.CreateDirectory(Path.GetDirectoryName(onDisk)!);
            await File.WriteAllBytesAsync(onDisk, content);
            archiveFiles.Add(new ArchiveFile(path, onDisk));
        }

        using var archive = new MemoryStream();
        await ArchiveWriter.WriteAsync(archive, archiveFiles, CancellationToken.None);
        archive.Position = 0;
        return await store.PutAsync(archive, CancellationToken.None);
    }

    /// <summary>A base image as an OCI layout folder: one empty layer, a config with an environment variable.</summary>
    private static async Task<string> WriteBaseLayoutAsync(string folder)
    {
        var blobs = Directory.CreateDirectory(Path.Combine(folder, "blobs", "sha256")).FullName;
        async Task<Digest> PutAsync(byte[] bytes)
        {
            var digest = Digest.Compute(bytes);
            await File.WriteAllBytesAsync(Path.Combine(blobs, digest.Hex), bytes);
            return digest;
        }

        var layer = new byte[1024];
        var layerDigest = await PutAsync(layer);
        var config = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new JsonObject { ["Env"] = new JsonArray("PATH=/usr/bin:/bin") },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(layerDigest.ToString()) },
        }.ToJsonString());
        var configDigest = await PutAsync(config);
        var manifest = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = OciImageWriter.ManifestMediaType,
            ["config"] = OciImageWriter.Descriptor(OciImageWriter.ConfigMediaType, configDigest, config.Length),
            ["layers"] = new JsonArray(OciImageWriter.Descriptor(OciImageWriter.LayerMediaType, layerDigest, layer.Length)),
        }.ToJsonString());
        var manifestDigest = await PutAsync(manifest);
        await File.WriteAllTextAsync(Path.Combine(folder, "index.json"), new JsonObject
        {
            ["schemaVersion"] = 2,
            ["manifests"] = new JsonArray(OciImageWriter.Descriptor(OciImageWriter.ManifestMediaType, manifestDigest, manifest.Length)),
        }.ToJsonString());
        await File.WriteAllTextAsync(Path.Combine(folder, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
        return folder;
    }
}
