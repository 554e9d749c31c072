using System.Collections.Concurrent;
using Skiff.Core;
using Skiff.Core.Queues;
using Skiff.Server.Agents;
using Skiff.Server.Api;
using Skiff.Server.Metadata;

namespace Skiff.Server.Tasks;

/// <summary>
/// How many agents a pool deployed with <c>--replicas MIN..MAX</c> is to be on (docs/tasks.md, "Scaling a pool"), from
/// its work: its ready plus in-flight tasks, as KEDA would see them on /metrics, and the runs of its own jobs that have
/// not ended.
/// </summary>
/// <remarks>
/// Up at once: <c>clamp(ready + in_flight, MIN, MAX)</c>, one replica per task, so a task for a pool at zero places it.
/// Runs do not add replicas (a run's start places the pool on an agent for it), but a pool with one is busy.
/// Down only to MIN, and only once the pool has had no work for <paramref name="idlePeriod"/>: a pool whose work shrinks
/// keeps its replicas until it is idle, so a burst after a lull finds them warm and placements do not follow every
/// task's end. The idle time counts from the last pass that saw work, or from the first pass that saw the pool.
/// </remarks>
internal sealed class PoolScaleRule(TimeProvider time, TimeSpan idlePeriod)
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _busyAt = new(StringComparer.Ordinal);

    /// <summary>
    /// The replicas <paramref name="pool"/> is to be on, now on <paramref name="placed"/>, with <paramref name="work"/> tasks
    /// ready or in flight and <paramref name="runs"/> of its own runs queued, starting or running.
    /// </summary>
    public int Desired(string pool, int placed, long work, int min, int max, int runs = 0)
    {
        var now = time.GetUtcNow();
        if (work > 0 || runs > 0)
        {
            _busyAt[pool] = now;
            return Math.Clamp(Math.Max(placed, (int)Math.Min(work, max)), min, max);
        }

        return now - _busyAt.GetOrAdd(pool, now) >= idlePeriod ? min : Math.Clamp(placed, min, max);
    }

    /// <summary>A pool no longer scales (redeployed fixed, or gone): its idle time starts afresh if it scales again.</summary>
    public void Forget(string pool) => _busyAt.TryRemove(pool, out _);
}

/// <summary>
/// Scales the pools deployed with <c>--replicas MIN..MAX</c>: every <see cref="Interval"/> it counts each one's ready and
/// in-flight tasks and its runs not yet ended, asks <see cref="PoolScaleRule"/> how many agents it is to be on, and has the <see cref="AgentHub"/>
/// place it there: more agents through the normal rebalance (health-gated, on agents that match its <c>--on</c>), fewer
/// only off agents whose worker holds no task and that run none of its runs (<see cref="AgentHub.ScaleDownAsync"/>). One
/// count of the queue and one of the runs per such pool per pass.
/// </summary>
internal sealed class PoolScaler(IMetadataStore store, ITaskQueue queue, AgentHub agents, PoolScaleRule rule, ILogger logger, CancellationToken stopping)
{
    /// <summary>How often the pools are looked at: a task for a pool at zero waits up to this long before it is placed.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly HashSet<string> _scaling = new(StringComparer.Ordinal);

    // What was last logged of each pool (its replicas now and to be, and why it cannot be placed): a pool that stays as it
    // is, a pool whose tasks wait for an agent that matches it included, is logged once, not on every pass.
    private readonly Dictionary<string, (int Placed, int Desired)> _logged = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _unplaceable = new(StringComparer.Ordinal);

    /// <summary>Until the server stops, one pass every <see cref="Interval"/>.</summary>
    public async Task RunAsync(TimeProvider time)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Interval, time, stopping).ConfigureAwait(false);
                await PassAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception exception) when (exception is SkiffException or TaskQueueUnavailableException or AgentUnavailableException)
            {
                // The store or the broker is away for a moment: the next pass tries again, the placements as they are meanwhile.
                Log.PoolsNotScaled(logger, exception.Message, Interval);
            }
            catch (Exception exception)
            {
                // A bug in one pass must not end the scaling for the server's life.
                Log.PoolsNotScaled(logger, $"{exception.GetType().Name}: {exception}", Interval);
            }
        }
    }

    /// <summary>
    /// A pool with work and on no connected agent: when no connected agent can host it either, that is said once per
    /// reason in the log, and once to each call waiting for it (<see cref="TaskDispatcher.NoteWaitingAsync"/>), which
    /// would otherwise show only that it was called.
    /// </summary>
    private async Task NoteUnplaceableAsync(string pool, bool waiting, CancellationToken cancellationToken)
    {
        var why = waiting ? await agents.UnplaceableAsync(pool, cancellationToken).ConfigureAwait(false) : null;
        if (why is null)
        {
            _unplaceable.Remove(pool);
            return;
        }

        if (_unplaceable.GetValueOrDefault(pool) != why)
        {
            _unplaceable[pool] = why;
            Log.PoolUnplaceable(logger, pool, why);
        }

        if (agents.Tasks is { } tasks)
        {
            await tasks.NoteWaitingAsync(pool, $"the call waits: no connected agent can host pool '{pool}': {why} "
                + "It stays queued, and runs once such an agent connects (or the pool is deployed with a placement one matches).").ConfigureAwait(false);
        }
    }

    /// <summary>One look at every pool that scales: each is scaled to what its work asks.</summary>
    public async Task PassAsync(CancellationToken cancellationToken)
    {
        var placements = await store.ListPlacementsAsync(cancellationToken).ConfigureAwait(false);
        // A pool being deployed is placed by its deployment (on its agents now, one at least); scaled after it.
        var pending = (await store.ListPendingDeploymentsAsync(cancellationToken).ConfigureAwait(false)).Select(d => d.Location).ToHashSet(StringComparer.Ordinal);
        var scaling = new HashSet<string>(StringComparer.Ordinal);
        IReadOnlySet<string>? connected = null;
        var grow = false;
        foreach (var location in await store.ListLocationsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (location is not { MinReplicas: { } min, LiveRelease: not null } || Json.Tasks(location.TasksJson).Count == 0 || pending.Contains(location.Name))
            {
                continue;
            }

            scaling.Add(location.Name);
            // Replicas are counted on connected agents only. An agent that went away keeps an ordinary location's placement
            // for the grace period, so a reconnect moves nothing; a pool's replica there serves no task meanwhile, and a
            // pool whose only replica died would wait out the grace period with its calls queued. Its placement goes at
            // once (ScaleDownAsync takes away agents first), and the pool is placed on a connected agent as its work asks.
            // Not its agents not reconnected yet after this server started: taken off them then, an agent's catch-up raced
            // the scale-up placing the pool back, stopped it there, and its worker was handed tasks it could not run.
            var placedOn = placements.GetValueOrDefault(location.Name) ?? [];
            connected ??= await agents.ServingAgentNamesAsync(cancellationToken).ConfigureAwait(false);
            var placed = placedOn.Count(connected.Contains);
            var counts = await queue.CountAsync(location.Name, cancellationToken).ConfigureAwait(false);
            var work = counts.Ready + counts.InFlight;
            // A run of the pool's own jobs is its work too: scaled down meanwhile, its agent would be told to stop the location
            // the run needs (one still starting there is refused).
            var runs = (await agents.ActiveRunsAsync(location.Name, cancellationToken).ConfigureAwait(false)).Sum(r => r.Runs);
            var desired = rule.Desired(location.Name, placed, work, min, location.Replicas, runs);
            agents.ScaleTo(location.Name, desired);
            if (desired != placed && _logged.GetValueOrDefault(location.Name) != (placed, desired))
            {
                Log.PoolScaling(logger, location.Name, work, runs, placed, desired);
            }

            _logged[location.Name] = (placed, desired);
            await NoteUnplaceableAsync(location.Name, work > 0 && placed == 0, cancellationToken).ConfigureAwait(false);

            if (desired < placed || placed < placedOn.Count)
            {
                await agents.ScaleDownAsync(location.Name, Math.Min(desired, placed), cancellationToken).ConfigureAwait(false);
            }

            grow |= desired > placed;
        }

        foreach (var gone in _scaling.Except(scaling).ToList())
        {
            rule.Forget(gone);
            _logged.Remove(gone);
            _unplaceable.Remove(gone);
        }

        _scaling.Clear();
        _scaling.UnionWith(scaling);
        if (grow)
        {
            await agents.RebalanceAsync(onlyAgent: null, cancellationToken).ConfigureAwait(false);
        }
    }
}
