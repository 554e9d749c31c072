using Prometheus;
using Skiff.Core.Blobs;
using Skiff.Server.Blobs;

namespace Skiff.Server.Metrics;

/// <summary>
/// The blob store's blob count and bytes for /metrics, measured from the store's listing when a scrape finds the last
/// measure older than <see cref="Interval"/>, never on every scrape: a folder's listing costs a stat per blob, a
/// bucket's a LIST request per 1,000 blobs (billed). A scrape waits for a measure at most <see cref="ScrapeWait"/>; past
/// that it shows the last figures, and the measure goes on for the next scrape.
/// </summary>
internal sealed class BlobStoreSize
{
    /// <summary>How long a scrape waits for a measure before it shows the previous figures.</summary>
    public static readonly TimeSpan ScrapeWait = TimeSpan.FromSeconds(2);

    private readonly IBlobStore _blobs;
    private readonly TimeProvider _time;
    private readonly Gauge _count;
    private readonly Gauge _bytes;
    private readonly Lock _lock = new();
    private Task? _measuring;
    private DateTimeOffset _measuredAt = DateTimeOffset.MinValue;

    public BlobStoreSize(IBlobStore blobs, ServerMetrics metrics, TimeProvider time)
    {
        _blobs = blobs;
        _time = time;
        // A bucket is measured less often: each measure is billed, and a store's size changes with deploys and gc only.
        Interval = blobs is S3BlobStore ? TimeSpan.FromMinutes(15) : TimeSpan.FromMinutes(1);
        // Absent until measured: 0 would be a wrong figure, not a missing one.
        var config = new GaugeConfiguration { SuppressInitialValue = true };
        _count = metrics.Factory.CreateGauge("skiff_blob_store_blobs", "Blobs in the blob store (measured at most every minute, every 15 for S3).", config);
        _bytes = metrics.Factory.CreateGauge("skiff_blob_store_bytes", "Bytes of the blobs in the blob store (measured at most every minute, every 15 for S3).", config);
        metrics.Registry.AddBeforeCollectCallback(RefreshAsync);
    }

    /// <summary>How old the last measure may be before a scrape starts another.</summary>
    public TimeSpan Interval { get; }

    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        Task measuring;
        lock (_lock)
        {
            if (_measuring is null && _time.GetUtcNow() - _measuredAt >= Interval)
            {
                _measuring = Task.Run(MeasureAsync, CancellationToken.None);
            }

            measuring = _measuring ?? Task.CompletedTask;
        }

        try
        {
            await measuring.WaitAsync(ScrapeWait, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Still measuring: this scrape shows the last figures.
        }
    }

    private async Task MeasureAsync()
    {
        try
        {
            var (count, bytes) = _blobs switch
            {
                FileBlobStore files => files.Measure(CancellationToken.None),
                S3BlobStore s3 => await s3.MeasureAsync(CancellationToken.None).ConfigureAwait(false),
                _ => throw new NotSupportedException($"a blob store of type {_blobs.GetType().Name} cannot be measured"),
            };
            _count.Set(count);
            _bytes.Set(bytes);
        }
        catch (Exception exception) when (exception is BlobStoreUnavailableException or IOException or UnauthorizedAccessException)
        {
            // The store did not answer: the last figures stay, and the next scrape after the interval tries again.
        }
        finally
        {
            lock (_lock)
            {
                _measuredAt = _time.GetUtcNow();
                _measuring = null;
            }
        }
    }
}
