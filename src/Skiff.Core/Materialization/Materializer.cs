using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;

namespace Skiff.Core.Materialization;

/// <summary>
/// Unpacks releases from a blob store into a cache folder. Every package and every source is unpacked
/// once, into a folder named by its blob digest, and shared by every release that uses it:
/// <c>packages/&lt;hex&gt;/</c> and <c>sources/&lt;hex&gt;/</c>. A folder appears under its real name only
/// when complete (extracted beside it, then renamed), so a crash never leaves half a package.
/// </summary>
internal sealed class Materializer(IBlobStore store, string cacheRoot)
{
    public string PackagesDirectory { get; } = Path.Combine(Path.GetFullPath(cacheRoot), "packages");

    public string SourcesDirectory { get; } = Path.Combine(Path.GetFullPath(cacheRoot), "sources");

    private string TempDirectory => Path.Combine(Path.GetFullPath(cacheRoot), "tmp");

    public async Task<MaterializedRelease> MaterializeAsync(Digest release, CancellationToken cancellationToken)
    {
        var manifest = await ManifestLoader.LoadReleaseAsync(store, release, cancellationToken).ConfigureAwait(false);
        var environment = await ManifestLoader.LoadEnvironmentAsync(store, manifest.Environment, cancellationToken).ConfigureAwait(false);

        await Parallel.ForEachAsync(
            environment.Packages,
            new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken },
            async (package, ct) => await EnsureAsync(PackagesDirectory, package.Blob, ct).ConfigureAwait(false)).ConfigureAwait(false);
        var source = await EnsureAsync(SourcesDirectory, manifest.Source, cancellationToken).ConfigureAwait(false);

        return new MaterializedRelease(release, source, PackagesDirectory, manifest.EntryAssembly);
    }

    private async Task<string> EnsureAsync(string parent, Digest blob, CancellationToken cancellationToken)
    {
        var target = Path.Combine(parent, blob.Hex);
        if (Directory.Exists(target))
        {
            return target;
        }

        Directory.CreateDirectory(parent);
        Directory.CreateDirectory(TempDirectory);
        var staging = Path.Combine(TempDirectory, $"{blob.Hex}.{Environment.ProcessId}.{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            var stream = await store.OpenReadAsync(blob, cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                await ArchiveReader.ExtractAsync(stream, staging, $"blob {blob}", ArchiveLimits.Default, cancellationToken).ConfigureAwait(false);
            }

            try
            {
                Directory.Move(staging, target);
            }
            catch (IOException) when (Directory.Exists(target))
            {
                // Another process materialized the same blob first; its folder has the same content.
            }

            return target;
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }
}
