using System.Security.Cryptography;
using System.Text;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;

namespace Skiff.Core.Materialization;

/// <summary>
/// Unpacks releases from a blob store into a cache folder. Every package and every source is unpacked
/// once, into a folder named by its blob digest, and shared by every release that uses it:
/// <c>packages/&lt;hex&gt;/</c> and <c>sources/&lt;hex&gt;/</c>. A folder appears under its real name only
/// when complete (extracted beside it, then renamed), so a crash never leaves half a package. Beside each
/// folder, <c>&lt;hex&gt;.tree</c> records a digest of its files, so a damaged folder can be found later
/// (<see cref="VerifyAsync"/>).
/// </summary>
/// <remarks>
/// Code that runs is code that was deployed: before a process starts from a folder, the folder is checked against a
/// <see cref="FolderStamp"/> taken when it was unpacked or last verified, and a folder that changed is unpacked again
/// from its blob (<see cref="EnsureIntactAsync"/>). Stamps are kept in this process's memory only: a job running as
/// the agent's user (no sandbox) could rewrite a record on disk along with the file it edits.
/// </remarks>
internal sealed class Materializer(IBlobStore store, string cacheRoot)
{
    private const string TreeSuffix = ".tree";

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte[]> _stamps = new(StringComparer.Ordinal);

    public string PackagesDirectory { get; } = Path.Combine(Path.GetFullPath(cacheRoot), "packages");

    public string SourcesDirectory { get; } = Path.Combine(Path.GetFullPath(cacheRoot), "sources");

    private string TempDirectory => Path.Combine(Path.GetFullPath(cacheRoot), "tmp");

    public async Task<MaterializedRelease> MaterializeAsync(Digest release, CancellationToken cancellationToken) =>
        (await MaterializeWithDetailsAsync(release, cancellationToken).ConfigureAwait(false)).Release;

    /// <summary>Materializes a release and says what it took: which folders were unpacked now rather than found.</summary>
    public async Task<MaterializeOutcome> MaterializeWithDetailsAsync(Digest release, CancellationToken cancellationToken)
    {
        var manifest = await ManifestLoader.LoadReleaseAsync(store, release, cancellationToken).ConfigureAwait(false);
        var environment = await ManifestLoader.LoadEnvironmentAsync(store, manifest.Environment, cancellationToken).ConfigureAwait(false);

        // Experimental packages (docs/build.md) sit beside the environment's in the one packages folder the deps file points into.
        var packages = environment.Packages.Select(p => p.Blob).Concat(manifest.ExperimentalBlobs()).Distinct().ToList();
        var unpacked = new bool[packages.Count];
        var repaired = new System.Collections.Concurrent.ConcurrentBag<Digest>();
        await Parallel.ForAsync(
            0,
            packages.Count,
            new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken },
            async (i, ct) => unpacked[i] = await EnsureAsync(PackagesDirectory, packages[i], repaired, ct).ConfigureAwait(false)).ConfigureAwait(false);
        var sourceUnpacked = await EnsureAsync(SourcesDirectory, manifest.Source, repaired, cancellationToken).ConfigureAwait(false);
        var sourceDirectory = Path.Combine(SourcesDirectory, manifest.Source.Hex);
        // The manifest made it a plain file name; a release from an older server may still name one its source lacks.
        if (!File.Exists(Path.Combine(sourceDirectory, manifest.EntryAssembly)))
        {
            throw new InvalidManifestException($"release {release}", $"its entry_assembly '{manifest.EntryAssembly}' is not a file of its source blob {manifest.Source}");
        }

        return new MaterializeOutcome(
            new MaterializedRelease(release, sourceDirectory, PackagesDirectory, manifest.EntryAssembly),
            manifest,
            packages,
            unpacked.Count(u => u),
            sourceUnpacked)
        {
            Repaired = [.. repaired],
        };
    }

    /// <summary>
    /// Checks every folder of a materialized release before a process starts from it, and unpacks again from its blob
    /// each one that changed since it was unpacked or verified. Returns the digests of the folders it unpacked again.
    /// Costs a stat per file (<see cref="FolderStamp"/>), except for a folder this process has no stamp of, whose
    /// files are hashed once.
    /// </summary>
    public async Task<IReadOnlyList<Digest>> EnsureIntactAsync(MaterializeOutcome release, CancellationToken cancellationToken)
    {
        var repaired = new System.Collections.Concurrent.ConcurrentBag<Digest>();
        var folders = release.Packages.Select(p => (Parent: PackagesDirectory, Blob: p)).Append((Parent: SourcesDirectory, Blob: release.Manifest.Source)).ToList();
        await Parallel.ForEachAsync(
            folders,
            new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken },
            async (folder, ct) => await EnsureAsync(folder.Parent, folder.Blob, repaired, ct, touch: false).ConfigureAwait(false)).ConfigureAwait(false);
        return [.. repaired];
    }

    /// <summary>
    /// Checks every unpacked folder against its recorded digest and deletes the ones that differ or have
    /// none (a crash between unpacking and recording). Returns the digests of the folders it deleted.
    /// </summary>
    public async Task<IReadOnlyList<Digest>> VerifyAsync(CancellationToken cancellationToken)
    {
        var dropped = new List<Digest>();
        foreach (var parent in (string[])[PackagesDirectory, SourcesDirectory])
        {
            if (!Directory.Exists(parent))
            {
                continue;
            }

            foreach (var folder in Directory.EnumerateDirectories(parent))
            {
                if (!Digest.TryParseHex(Path.GetFileName(folder), out var digest))
                {
                    continue;
                }

                if (!await MatchesRecordAsync(folder, cancellationToken).ConfigureAwait(false))
                {
                    Delete(parent, digest);
                    dropped.Add(digest);
                }
            }

            // Records whose folder is gone are leftovers of an interrupted delete.
            foreach (var record in Directory.EnumerateFiles(parent, "*" + TreeSuffix))
            {
                if (!Directory.Exists(record[..^TreeSuffix.Length]))
                {
                    File.Delete(record);
                }
            }
        }

        if (Directory.Exists(TempDirectory))
        {
            Directory.Delete(TempDirectory, recursive: true);
        }

        return dropped;
    }

    /// <summary>How many unpacked folders there are, without measuring them.</summary>
    public int CountFolders() =>
        ((string[])[PackagesDirectory, SourcesDirectory]).Where(Directory.Exists).Sum(parent => Directory.EnumerateDirectories(parent).Count(f => Digest.TryParseHex(Path.GetFileName(f), out _)));

    /// <summary>Every unpacked folder with its size in bytes and when it was last used (its record's write time).</summary>
    public IReadOnlyList<CachedFolder> List()
    {
        var folders = new List<CachedFolder>();
        foreach (var parent in (string[])[PackagesDirectory, SourcesDirectory])
        {
            if (!Directory.Exists(parent))
            {
                continue;
            }

            foreach (var folder in Directory.EnumerateDirectories(parent))
            {
                if (Digest.TryParseHex(Path.GetFileName(folder), out var digest))
                {
                    var bytes = new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
                    var record = new FileInfo(folder + TreeSuffix);
                    folders.Add(new CachedFolder(digest, parent == PackagesDirectory, bytes, record.Exists ? record.LastWriteTimeUtc : DateTime.MinValue));
                }
            }
        }

        return folders;
    }

    /// <summary>Marks a folder as used now (its record's write time), for least-recently-used eviction.</summary>
    private static void Touch(string folder)
    {
        try
        {
            File.SetLastWriteTimeUtc(folder + TreeSuffix, DateTime.UtcNow);
        }
        catch (FileNotFoundException)
        {
            // No record: the folder is found damaged at the next check and unpacked again.
        }
    }

    /// <summary>Deletes an unpacked folder; its record goes first, so an interrupted delete is found damaged later.</summary>
    public void Delete(Digest digest, bool package) => Delete(package ? PackagesDirectory : SourcesDirectory, digest);

    private void Delete(string parent, Digest digest)
    {
        var folder = Path.Combine(parent, digest.Hex);
        _stamps.TryRemove(folder, out _);
        File.Delete(folder + TreeSuffix);
        // Moved aside first, which is atomic, then deleted: another materializer repairing the same folder at the same
        // moment finds it gone instead of half deleted under its feet.
        Directory.CreateDirectory(TempDirectory);
        var doomed = Path.Combine(TempDirectory, $"{digest.Hex}.deleted.{Guid.NewGuid():N}");
        try
        {
            Directory.Move(folder, doomed);
        }
        catch (DirectoryNotFoundException)
        {
            return;
        }

        Directory.Delete(doomed, recursive: true);
    }

    /// <summary>
    /// Whether a folder's files hash to the digest recorded when it was unpacked; when they do, its stamp is taken (before
    /// hashing, so a change made while hashing shows at the next check).
    /// </summary>
    private async Task<bool> MatchesRecordAsync(string folder, CancellationToken cancellationToken)
    {
        var stamp = FolderStamp.Take(folder);
        var record = folder + TreeSuffix;
        var expected = File.Exists(record) ? await File.ReadAllTextAsync(record, cancellationToken).ConfigureAwait(false) : null;
        if (stamp is null || expected is null || expected != await TreeDigestAsync(folder, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }

        _stamps[folder] = stamp;
        return true;
    }

    /// <summary>Whether an unpacked folder is as it was unpacked: by its stamp when this process has one, else by its files' digest.</summary>
    private async Task<bool> IntactAsync(string folder, CancellationToken cancellationToken) =>
        _stamps.TryGetValue(folder, out var known)
            ? FolderStamp.Take(folder) is { } now && CryptographicOperations.FixedTimeEquals(now, known)
            : await MatchesRecordAsync(folder, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Returns true when the folder was unpacked now, false when it was already there, intact. A folder that is there
    /// but changed is deleted, unpacked again from its blob, and added to <paramref name="repaired"/>. An intact folder is
    /// marked used now (for eviction) only when <paramref name="touch"/>: once per activation is enough.
    /// </summary>
    private async Task<bool> EnsureAsync(string parent, Digest blob, System.Collections.Concurrent.ConcurrentBag<Digest> repaired, CancellationToken cancellationToken, bool touch = true)
    {
        var target = Path.Combine(parent, blob.Hex);
        if (Directory.Exists(target))
        {
            if (await IntactAsync(target, cancellationToken).ConfigureAwait(false))
            {
                if (touch)
                {
                    Touch(target);
                }

                return false;
            }

            // Processes already running from the old folder keep its files open; the next ones start from the blob's.
            Delete(parent, blob);
            repaired.Add(blob);
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

            // The record goes in place before the folder: a folder that appears always has its record, so another
            // materializer checking it at that moment finds it intact rather than damaged (and deleting it). Records of
            // one blob are the same, whoever writes them.
            var record = staging + TreeSuffix;
            await File.WriteAllTextAsync(record, await TreeDigestAsync(staging, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            File.Move(record, target + TreeSuffix, overwrite: true);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    Directory.Move(staging, target);
                    break;
                }
                catch (IOException) when (Directory.Exists(target))
                {
                    // Another materializer put the same blob in place first; its folder has the same content.
                    return false;
                }
                catch (IOException) when (attempt < 3)
                {
                    // It was there and is gone now (repaired by another at this moment): try again.
                }
            }

            if (FolderStamp.Take(target) is { } stamp)
            {
                _stamps[target] = stamp;
            }

            return true;
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }

    /// <summary>A digest of a folder's files: their paths, sizes and contents, in ordinal path order.</summary>
    private static async Task<string> TreeDigestAsync(string folder, CancellationToken cancellationToken)
    {
        using var tree = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(file => (Relative: Path.GetRelativePath(folder, file).Replace('\\', '/'), Full: file))
            .OrderBy(file => file.Relative, StringComparer.Ordinal);
        foreach (var (relative, full) in files)
        {
            var stream = File.OpenRead(full);
            await using (stream.ConfigureAwait(false))
            {
                var content = await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false);
                tree.AppendData(Encoding.UTF8.GetBytes($"{relative}\0{stream.Length}\0{Convert.ToHexStringLower(content)}\n"));
            }
        }

        return Digest.FromHash(tree.GetHashAndReset()).ToString();
    }
}
