using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;

namespace Skiff.Core.Tests;

/// <summary>Small factories for test data: real archives and manifests put into a real store.</summary>
internal static class Some
{
    /// <summary>Pseudo-random bytes, the same for the same length and seed.</summary>
    public static byte[] Bytes(int length, int seed = 0)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static byte[] Text(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    public static async Task<Digest> ArchiveAsync(FileBlobStore store, string scratch, params (string Path, string Content)[] files)
    {
        var folder = Path.Combine(scratch, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var entries = new List<ArchiveFile>();
        foreach (var (path, content) in files)
        {
            var source = Path.Combine(folder, path.Replace('/', '_'));
            await File.WriteAllTextAsync(source, content);
            entries.Add(new ArchiveFile(path, source));
        }

        using var buffer = new MemoryStream();
        await ArchiveWriter.WriteAsync(buffer, entries, CancellationToken.None);
        buffer.Position = 0;
        return await store.PutAsync(buffer, CancellationToken.None);
    }

    public static async Task<(Digest Release, Digest Environment, Digest Source, Digest Package)> ReleaseAsync(FileBlobStore store, string scratch, string programText = "app")
    {
        var package = await ArchiveAsync(store, scratch, ("lib/net10.0/Lib.dll", "library bytes"));
        var source = await ArchiveAsync(store, scratch, ("App.dll", programText), ("App.deps.json", "{}"), ("App.runtimeconfig.json", "{}"));
        var environment = EnvironmentManifest.Create("net10.0", "linux-x64", ["Microsoft.NETCore.App"], "default", [new PackageEntry("Lib", "1.0.0", "sha512-x", package)]);
        var environmentDigest = await store.PutAsync(new MemoryStream(environment.ToBytes()), CancellationToken.None);
        var release = ReleaseManifest.Create(environmentDigest, source, "App.dll", sdkVersion: null);
        var releaseDigest = await store.PutAsync(new MemoryStream(release.ToBytes()), CancellationToken.None);
        return (releaseDigest, environmentDigest, source, package);
    }
}
