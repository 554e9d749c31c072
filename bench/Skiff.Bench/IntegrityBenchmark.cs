using System.Diagnostics;
using Skiff.Build.Releases;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;
using Skiff.Core.Materialization;
using Skiff.Server.Blobs;
using Skiff.Testing;

namespace Skiff.Bench;

/// <summary>
/// What the integrity checks cost on samples/Heavy (docs/integrity.md): on the agent, checking a release's unpacked
/// folders before a process starts from them, by stat stamp (every activation, run and restart) and by hashing every
/// file (once per folder after an agent start); on the server, hashing the blobs a deployment needs, with and without
/// the memory of blobs hashed within the hour.
/// </summary>
internal static class IntegrityBenchmark
{
    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var project = workspace.CopySample("Heavy", "repo");
        var store = new FileBlobStore(Path.Combine(workspace.Root, "store"));
        var release = (await new ReleaseBuilder(store).BuildAsync(new BuildRequest(project), null, CancellationToken.None)).Release;
        var manifest = await ManifestLoader.LoadReleaseAsync(store, release, CancellationToken.None);
        var environment = await ManifestLoader.LoadEnvironmentAsync(store, manifest.Environment, CancellationToken.None);
        var blobs = environment.Packages.Select(p => p.Blob).Append(manifest.Source).Distinct().ToList();
        var blobBytes = 0L;
        foreach (var blob in blobs)
        {
            blobBytes += await store.GetLengthAsync(blob, CancellationToken.None) ?? 0;
        }

        var cache = Path.Combine(workspace.Root, "cache");
        var outcome = await new Materializer(store, cache).MaterializeWithDetailsAsync(release, CancellationToken.None);
        var folders = outcome.Packages.Select(p => Path.Combine(outcome.Release.PackagesDirectory, p.Hex)).Append(outcome.Release.SourceDirectory).ToList();
        var files = folders.Sum(f => Directory.EnumerateFiles(f, "*", SearchOption.AllDirectories).Count());
        var unpackedBytes = folders.Sum(f => new DirectoryInfo(f).EnumerateFiles("*", SearchOption.AllDirectories).Sum(file => file.Length));

        var series = new Dictionary<string, List<double>>();
        var agent = new Materializer(store, cache);
        for (var i = 0; i < iterations + 1; i++)
        {
            // A materializer new to the cache has no stamps: it hashes every file once, as after an agent start.
            var fresh = new Materializer(store, cache);
            var hashed = await TimeAsync(() => fresh.EnsureIntactAsync(outcome, CancellationToken.None));
            var stamped = await TimeAsync(() => agent.EnsureIntactAsync(outcome, CancellationToken.None));
            var stampOnly = await TimeAsync(() =>
            {
                foreach (var folder in folders)
                {
                    _ = FolderStamp.Take(folder);
                }

                return Task.CompletedTask;
            });
            var server = new FileBlobStore(Path.Combine(workspace.Root, "store"));
            var full = await TimeAsync(() => VerifyAllAsync(server, blobs, TimeSpan.Zero));
            var trusted = await TimeAsync(() => VerifyAllAsync(server, blobs, BlobStores.TrustVerified));
            var source = await TimeAsync(() => server.VerifyAsync(manifest.Source, TimeSpan.Zero, CancellationToken.None));
            if (i == 0)
            {
                continue; // warm-up
            }

            Stats.Add(series, "agent: check before a start (stamps, 4 at once)", stamped);
            Stats.Add(series, "agent: stamps alone, one after another", stampOnly);
            Stats.Add(series, "agent: hash of every file (first check)", hashed);
            Stats.Add(series, "server: hash every blob (nothing remembered)", full);
            Stats.Add(series, "server: every blob hashed within the hour", trusted);
            Stats.Add(series, "server: hash the new source only (fast)", source);
        }

        Stats.Print(
            $"integrity checks on samples/Heavy: {outcome.Packages.Count} packages + source, {files} files, {unpackedBytes / (1024.0 * 1024):0.0} MiB unpacked, {blobs.Count} blobs of {blobBytes / (1024.0 * 1024):0.0} MiB; {iterations} iterations, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}",
            series);
        return 0;
    }

    /// <summary>What a deployment does: every blob, four at a time.</summary>
    private static Task VerifyAllAsync(IBlobStore store, IReadOnlyList<Digest> blobs, TimeSpan trust) =>
        Parallel.ForEachAsync(blobs, new ParallelOptions { MaxDegreeOfParallelism = BlobStores.HashesAtOnce }, async (blob, ct) => await store.VerifyAsync(blob, trust, ct).ConfigureAwait(false));

    private static async Task<double> TimeAsync(Func<Task> action)
    {
        var started = Stopwatch.GetTimestamp();
        await action();
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }
}
