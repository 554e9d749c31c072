using Microsoft.Extensions.Hosting;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;
using Skiff.Server.Metadata;

namespace Skiff.Server.Blobs;

/// <summary>
/// Re-hashes every blob of the store in the background, at most <see cref="BytesPerSecond"/> on average, so damage
/// (a flipped bit on disk, a bad copy into the bucket) is found before a deployment or an agent needs the blob. A
/// damaged blob is quarantined by the store (moved aside, not deleted): it is missing from then on, so the next
/// deployment of a release that uses it uploads it again, and the releases and locations it affects are reported
/// (<see cref="ReportAsync"/>, <c>GET /api/v1/blobs/scrub</c>). The quarantine lives in the blob store itself, so every
/// server sharing the store sees it. Each hash also refreshes the store's memory of verified blobs, which is what lets
/// a deployment skip re-hashing (<see cref="BlobStores.TrustVerified"/>).
/// </summary>
internal sealed class Scrubber(IBlobStore blobs, IMetadataStore metadata, long bytesPerSecond, TimeProvider time) : BackgroundService
{
    /// <summary>The default rate: 8 MiB/s, a few percent of a disk's or a bucket's throughput, 28 GiB an hour.</summary>
    public const long DefaultBytesPerSecond = 8L * 1024 * 1024;

    /// <summary>
    /// A pass starts at most this often: a small store is not hashed over and over. Shorter than
    /// <see cref="BlobStores.TrustVerified"/>, so on a store a pass covers within the interval every blob stays trusted.
    /// </summary>
    public static readonly TimeSpan PassInterval = TimeSpan.FromMinutes(30);

    // The first pass waits this long after the server starts: a start, and a deploy right after it, get the disk alone.
    private static readonly TimeSpan FirstPassDelay = TimeSpan.FromMinutes(5);

    // After a pass that failed (the store did not answer), the next one is tried this much later.
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromMinutes(1);

    private ScrubPass? _lastPass;
    private ScrubPass? _current;

    /// <summary>The bound on the average rate of hashing, in bytes per second; 0 turns the background scrub off.</summary>
    public long BytesPerSecond { get; } = bytesPerSecond >= 0 ? bytesPerSecond : throw new ArgumentOutOfRangeException(nameof(bytesPerSecond), "a scrub rate is 0 (off) or more bytes per second");

    /// <summary>The pass under way, else the last one finished; null before the first.</summary>
    public ScrubPass? LastPass => Volatile.Read(ref _current) ?? Volatile.Read(ref _lastPass);

    /// <summary>Where failures of a pass are logged; nowhere unless the host gives one.</summary>
    public ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (BytesPerSecond == 0)
        {
            return;
        }

        try
        {
            await Task.Delay(FirstPassDelay, time, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            var started = time.GetUtcNow();
            try
            {
                var pass = await ScrubOnceAsync(stoppingToken).ConfigureAwait(false);
                var next = pass.Error is null ? started + PassInterval : time.GetUtcNow() + RetryAfterFailure;
                await Task.Delay(Max(next - time.GetUtcNow(), TimeSpan.Zero), time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                // Whatever went wrong with one pass must not stop the server (a background service that throws does):
                // it is in the pass's error, and the next pass tries again.
                if (Volatile.Read(ref _lastPass) is { } failed)
                {
                    failed.Error ??= exception.Message;
                }

                Log.ScrubFailed(Logger, exception, RetryAfterFailure);

                await Task.Delay(RetryAfterFailure, time, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// One pass over every stored blob: hashes each, quarantining the damaged, and waits after each blob as long as
    /// its bytes take at <see cref="BytesPerSecond"/> (no wait when it is 0: a pass asked for by hand or a test runs at
    /// full speed). A store that stops answering ends the pass with <see cref="ScrubPass.Error"/> set.
    /// </summary>
    public async Task<ScrubPass> ScrubOnceAsync(CancellationToken cancellationToken)
    {
        var pass = new ScrubPass(time.GetUtcNow());
        Volatile.Write(ref _current, pass);
        try
        {
            var listed = new List<Digest>();
            await foreach (var blob in blobs.ListAsync(cancellationToken).ConfigureAwait(false))
            {
                listed.Add(blob);
            }

            foreach (var blob in listed)
            {
                var began = time.GetTimestamp();
                var length = await blobs.GetLengthAsync(blob, cancellationToken).ConfigureAwait(false);
                if (length is null)
                {
                    continue; // collected since it was listed
                }

                try
                {
                    await blobs.VerifyAsync(blob, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
                }
                catch (BlobIntegrityException)
                {
                    pass.Quarantined.Enqueue(blob);
                    Log.BlobQuarantined(Logger, blob.ToString());
                }
                catch (BlobNotFoundException)
                {
                    continue;
                }

                pass.Blobs++;
                pass.Bytes += length.Value;
                if (BytesPerSecond > 0)
                {
                    var owed = TimeSpan.FromSeconds((double)length.Value / BytesPerSecond) - time.GetElapsedTime(began);
                    if (owed > TimeSpan.Zero)
                    {
                        await Task.Delay(owed, time, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (Exception exception) when (exception is BlobStoreUnavailableException or IOException)
        {
            pass.Error = exception.Message;
            Log.ScrubStopped(Logger, exception.Message);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            pass.Error = "the server stopped during the pass";
            throw;
        }
        finally
        {
            pass.Finished = time.GetUtcNow();
            Volatile.Write(ref _lastPass, pass);
            Volatile.Write(ref _current, null);
        }

        return pass;
    }

    /// <summary>
    /// Every blob in the store's quarantine: whether it has been stored again since (uploaded by a deployment), and, for
    /// those still missing, the releases that need it (of those the metadata store keeps: live, recent, pending or
    /// running; see <see cref="IMetadataStore.ListReferencedReleasesAsync"/>) and the locations where one of them is live.
    /// </summary>
    public async Task<IReadOnlyList<QuarantinedBlob>> ReportAsync(CancellationToken cancellationToken)
    {
        var quarantined = new List<Digest>();
        await foreach (var blob in blobs.ListQuarantinedAsync(cancellationToken).ConfigureAwait(false))
        {
            quarantined.Add(blob);
        }

        var missing = new HashSet<Digest>();
        foreach (var blob in quarantined)
        {
            if (!await blobs.ContainsAsync(blob, cancellationToken).ConfigureAwait(false))
            {
                missing.Add(blob);
            }
        }

        var affected = missing.Count == 0 ? [] : await AffectedReleasesAsync(missing, cancellationToken).ConfigureAwait(false);
        var live = missing.Count == 0 ? [] : await metadata.ListLocationsAsync(cancellationToken).ConfigureAwait(false);
        return
        [
            .. quarantined.Order().Select(blob =>
            {
                var releases = affected.Where(a => a.Value.Contains(blob)).Select(a => a.Key).Order().ToList();
                var locations = live.Where(l => l.LiveRelease is { } r && releases.Contains(r)).Select(l => l.Name).Order(StringComparer.Ordinal).ToList();
                return new QuarantinedBlob(blob, !missing.Contains(blob), releases, locations);
            }),
        ];
    }

    /// <summary>For each kept release that reaches one of <paramref name="damaged"/>, which of them it reaches.</summary>
    private async Task<Dictionary<Digest, HashSet<Digest>>> AffectedReleasesAsync(HashSet<Digest> damaged, CancellationToken cancellationToken)
    {
        var affected = new Dictionary<Digest, HashSet<Digest>>();
        var environments = new Dictionary<Digest, IReadOnlyList<Digest>>();
        foreach (var id in await metadata.ListReferencedReleasesAsync(cancellationToken).ConfigureAwait(false))
        {
            if (await metadata.GetReleaseAsync(id, cancellationToken).ConfigureAwait(false) is not { } release)
            {
                continue;
            }

            if (!environments.TryGetValue(release.Environment, out var packages))
            {
                try
                {
                    var environment = await ManifestLoader.LoadEnvironmentAsync(blobs, release.Environment, cancellationToken).ConfigureAwait(false);
                    packages = [.. environment.Packages.Select(p => p.Blob)];
                }
                catch (Exception exception) when (exception is BlobNotFoundException or BlobIntegrityException)
                {
                    packages = []; // the manifest itself is gone: the release is affected through it
                }

                environments[release.Environment] = packages;
            }

            var reached = packages.Concat(await ExperimentalBlobsAsync(release.Id, cancellationToken).ConfigureAwait(false))
                .Append(release.Id).Append(release.Environment).Append(release.Source).Where(damaged.Contains).ToHashSet();
            if (reached.Count > 0)
            {
                affected[release.Id] = reached;
            }
        }

        return affected;
    }

    /// <summary>The blobs of a release's experimental packages (skiff deploy --exp), which it reaches beside its environment's.</summary>
    private async Task<IEnumerable<Digest>> ExperimentalBlobsAsync(Digest release, CancellationToken cancellationToken)
    {
        try
        {
            return (await ManifestLoader.LoadReleaseAsync(blobs, release, cancellationToken).ConfigureAwait(false)).ExperimentalBlobs();
        }
        catch (Exception exception) when (exception is BlobNotFoundException or BlobIntegrityException)
        {
            return []; // the manifest itself is gone: the release is affected through it
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}

/// <summary>One pass of the scrub, under way (no <see cref="Finished"/>) or done.</summary>
internal sealed class ScrubPass(DateTimeOffset started)
{
    public DateTimeOffset Started { get; } = started;

    public DateTimeOffset? Finished { get; set; }

    /// <summary>Blobs hashed so far.</summary>
    public int Blobs { get; set; }

    /// <summary>Their bytes.</summary>
    public long Bytes { get; set; }

    /// <summary>The blobs this pass found damaged and quarantined (read while the pass adds to it).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<Digest> Quarantined { get; } = new();

    /// <summary>Why the pass ended early, if it did.</summary>
    public string? Error { get; set; }
}

/// <summary>A blob in the store's quarantine and what it affects.</summary>
/// <param name="Blob">Its digest.</param>
/// <param name="Restored">Whether the blob is stored again (a deployment uploaded it since); nothing is affected then.</param>
/// <param name="Releases">Kept releases that need it while it is missing.</param>
/// <param name="Locations">Locations where one of those releases is live: they recover with the next deploy.</param>
internal sealed record QuarantinedBlob(Digest Blob, bool Restored, IReadOnlyList<Digest> Releases, IReadOnlyList<string> Locations);
