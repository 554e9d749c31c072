using Skiff.Build.Restore;
using Skiff.Core;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;

namespace Skiff.Build.Environments;

/// <summary>
/// Makes one blob per package (its runtime assets for one runtime identifier) and the environment
/// manifest that lists them. A package already packed is found through the index and not read again.
/// </summary>
internal sealed class EnvironmentPacker(FileBlobStore store, PackageBlobIndex index)
{
    public async Task<PreparedEnvironment> PrepareAsync(ResolvedClosure closure, string variant, CancellationToken cancellationToken)
    {
        var prepared = await PreparePackagesAsync(closure.Packages, closure.Rid, cancellationToken).ConfigureAwait(false);

        var manifest = EnvironmentManifest.Create(
            closure.Framework,
            closure.Rid,
            closure.FrameworkReferences,
            variant,
            prepared.Select(p => p.Entry),
            closure.Locked);
        var bytes = manifest.ToBytes();
        return new PreparedEnvironment(manifest, bytes, Digest.Compute(bytes), prepared);
    }

    /// <summary>
    /// One blob per package, found through the index or packed and staged: the environment's packages, or a release's
    /// experimental ones, which are packed exactly the same way and so share blobs with any environment that has them.
    /// </summary>
    public async Task<PreparedPackage[]> PreparePackagesAsync(IReadOnlyList<ResolvedPackage> packages, string rid, CancellationToken cancellationToken)
    {
        var prepared = new PreparedPackage[packages.Count];
        // Packing is deflate-bound; two at a time keeps a 2-core machine busy without starving the build.
        await Parallel.ForAsync(
            0,
            packages.Count,
            new ParallelOptions { MaxDegreeOfParallelism = 2, CancellationToken = cancellationToken },
            async (i, ct) => prepared[i] = await PrepareAsync(packages[i], rid, ct).ConfigureAwait(false)).ConfigureAwait(false);
        return prepared;
    }

    /// <summary>Moves the newly packed blobs into the store and records them in the index.</summary>
    public async Task CommitAsync(PreparedEnvironment environment, CancellationToken cancellationToken)
    {
        await CommitPackagesAsync(environment.Packages, cancellationToken).ConfigureAwait(false);
        if (!await store.ContainsAsync(environment.Digest, cancellationToken).ConfigureAwait(false))
        {
            await store.PutAsync(environment.Digest, new MemoryStream(environment.ManifestBytes, writable: false), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Moves the newly packed package blobs into the store and records them in the index.</summary>
    public async Task CommitPackagesAsync(IEnumerable<PreparedPackage> packages, CancellationToken cancellationToken)
    {
        foreach (var package in packages.Where(p => p.StagedFile is not null))
        {
            var stored = await store.ImportFileAsync(package.StagedFile!, cancellationToken).ConfigureAwait(false);
            if (stored != package.Entry.Blob)
            {
                throw BlobIntegrityException.ForPut(package.Entry.Blob, stored, store.Root);
            }

            index.Set(package.IndexKey, stored);
        }
    }

    public static void Discard(PreparedEnvironment environment) => Discard(environment.Packages);

    public static void Discard(IEnumerable<PreparedPackage> packages)
    {
        foreach (var package in packages.Where(p => p.StagedFile is not null))
        {
            File.Delete(package.StagedFile!);
        }
    }

    private async Task<PreparedPackage> PrepareAsync(ResolvedPackage package, string rid, CancellationToken cancellationToken)
    {
        var key = PackageBlobIndex.KeyFor(package, rid);
        if (index.TryGet(key) is { } known
            && await store.GetLengthAsync(known, cancellationToken).ConfigureAwait(false) is { } length)
        {
            return new PreparedPackage(Entry(package, known), length, StagedFile: null, key);
        }

        foreach (var asset in package.Assets)
        {
            if (!File.Exists(asset.SourcePath))
            {
                throw new RestoreFailedException(
                    $"package {package.Id} {package.Version} is missing {asset.Path} in the NuGet packages folder ({asset.SourcePath}); the folder is damaged. Delete it and build again with --restore.",
                    output: null);
            }
        }

        var staged = store.NewTempPath();
        var file = new FileStream(staged, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 1 << 16, useAsync: true);
        await using (file.ConfigureAwait(false))
        {
            await ArchiveWriter.WriteAsync(file, package.Assets, cancellationToken).ConfigureAwait(false);
            file.Position = 0;
            var digest = await Digest.ComputeAsync(file, cancellationToken).ConfigureAwait(false);
            return new PreparedPackage(Entry(package, digest), file.Length, staged, key);
        }
    }

    private static PackageEntry Entry(ResolvedPackage package, Digest blob) =>
        new(package.Id, package.Version, package.Sha512, blob);
}
