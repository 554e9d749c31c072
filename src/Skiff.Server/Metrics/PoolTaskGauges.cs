using Prometheus;
using Skiff.Core.Queues;
using Skiff.Server.Metadata;

namespace Skiff.Server.Metrics;

/// <summary>
/// Each pool's ready and in-flight tasks for /metrics (<c>skiff_pool_tasks_ready</c>, <c>skiff_pool_tasks_in_flight</c>,
/// label <c>pool</c>): the figures a pool scales on, KEDA's Prometheus scaler among others (docs/queues.md). Read from
/// the pool's queue at every scrape: a count is one indexed query of the store or a passive declare on the broker, and
/// a scaler acting on a figure a minute old would start workers for tasks already done.
/// </summary>
/// <remarks>
/// Ready and in-flight both count, as the users learnt with Celery and KEDA: a pool whose tasks are all in
/// flight still needs its workers, and a scaler that sees only the ready ones would remove them mid-task. A pool whose
/// queue cannot be counted has no series in that scrape, not its last figures: a scaler then keeps the replicas it has
/// (KEDA treats a missing value as an error and falls back) instead of acting on a stale number.
/// </remarks>
internal sealed class PoolTaskGauges
{
    private readonly ITaskQueue _queue;
    private readonly Func<CancellationToken, Task<IReadOnlyCollection<string>>> _pools;
    private readonly Gauge _ready;
    private readonly Gauge _inFlight;
    private readonly Lock _lock = new();
    private HashSet<string> _shown = new(StringComparer.Ordinal);

    /// <param name="queue">The pools' queue: the store's in embedded mode, the broker's in scale-out.</param>
    /// <param name="pools">The pools there are now: the locations whose live release declares tasks.</param>
    /// <param name="metrics">The server's metrics, which show the two gauges.</param>
    public PoolTaskGauges(ITaskQueue queue, Func<CancellationToken, Task<IReadOnlyCollection<string>>> pools, ServerMetrics metrics)
    {
        _queue = queue;
        _pools = pools;
        _ready = metrics.Factory.CreateGauge("skiff_pool_tasks_ready", "Tasks of each pool waiting for a worker.", ["pool"]);
        _inFlight = metrics.Factory.CreateGauge("skiff_pool_tasks_in_flight", "Tasks of each pool delivered to a worker and not yet settled: a worker holds them.", ["pool"]);
        metrics.Registry.AddBeforeCollectCallback(RefreshAsync);
    }

    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var shown = new HashSet<string>(StringComparer.Ordinal);
        var counted = new List<(string Pool, PoolTaskCounts Counts)>();
        try
        {
            foreach (var pool in await _pools(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    counted.Add((pool, await _queue.CountAsync(pool, cancellationToken).ConfigureAwait(false)));
                }
                catch (Exception exception) when (exception is TaskQueueUnavailableException or MetadataStoreException)
                {
                    // This pool has no figure in this scrape; the others do.
                }
            }
        }
        catch (Exception exception) when (exception is MetadataStoreException or System.Data.Common.DbException or TimeoutException or IOException)
        {
            // The pools could not be listed (the store is down): no pool has a figure in this scrape.
            counted.Clear();
        }

        lock (_lock)
        {
            foreach (var (pool, counts) in counted)
            {
                _ready.WithLabels(pool).Set(counts.Ready);
                _inFlight.WithLabels(pool).Set(counts.InFlight);
                shown.Add(pool);
            }

            foreach (var gone in _shown.Except(shown))
            {
                _ready.RemoveLabelled(gone);
                _inFlight.RemoveLabelled(gone);
            }

            _shown = shown;
        }
    }
}
