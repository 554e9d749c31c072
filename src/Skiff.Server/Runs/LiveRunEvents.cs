using Skiff.Server.Metadata;

namespace Skiff.Server.Runs;

/// <summary>
/// The latest events this server's writer committed for each run someone here follows, so a follower that keeps up is
/// handed them from memory as they are stored instead of reading them back from the store.
/// </summary>
/// <remarks>
/// Only ever a cache of the store: each run's tail holds events that were committed (stored now, not resends the store
/// ignored), with the text that was stored, and with consecutive seqs; <see cref="After"/> answers only when the tail
/// holds the very next event, so what a follower gets from here is what the store would have returned. Anything else
/// (a follower behind the tail, events another server stored, a run's end a lost agent left to the server) is read
/// from the store as before. Runs nobody follows here have no tail: the writer's batches are not kept.
/// </remarks>
internal sealed class LiveRunEvents
{
    /// <summary>
    /// Events kept per followed run: a few of the writer's batches, so a follower that falls a little behind still reads
    /// from memory; one further behind reads the store until it catches up.
    /// </summary>
    internal const int Capacity = 4 * RunEventWriter.DefaultBatchSize;

    private readonly Dictionary<string, Tail> _runs = new(StringComparer.Ordinal);

    /// <summary>A follower of the run begins: its events are kept from the next batch the writer commits.</summary>
    public void Follow(string runId)
    {
        lock (_runs)
        {
            if (!_runs.TryGetValue(runId, out var tail))
            {
                _runs[runId] = tail = new Tail();
            }

            tail.Followers++;
        }
    }

    /// <summary>A follower of the run is gone; with the last one, the run's tail goes.</summary>
    public void Unfollow(string runId)
    {
        lock (_runs)
        {
            if (_runs.TryGetValue(runId, out var tail) && --tail.Followers == 0)
            {
                _runs.Remove(runId);
            }
        }
    }

    /// <summary>Events of the run the writer has just committed as new rows, in the order it stored them.</summary>
    public void Stored(string runId, IReadOnlyList<RunEventRecord> events)
    {
        Tail? tail;
        lock (_runs)
        {
            _runs.TryGetValue(runId, out tail);
        }

        tail?.Append(events);
    }

    /// <summary>
    /// The run's events from <paramref name="afterSeq"/> + 1 on, at most <paramref name="limit"/>, when the tail holds that
    /// event; null when it does not (nothing newer here, or the follower is behind the tail): read the store.
    /// </summary>
    public IReadOnlyList<RunEventRecord>? After(string runId, long afterSeq, int limit)
    {
        Tail? tail;
        lock (_runs)
        {
            _runs.TryGetValue(runId, out tail);
        }

        return tail?.After(afterSeq, limit);
    }

    private sealed class Tail
    {
        private readonly List<RunEventRecord> _events = [];

        public int Followers { get; set; }

        public void Append(IReadOnlyList<RunEventRecord> events)
        {
            lock (_events)
            {
                foreach (var stored in events)
                {
                    // Consecutive seqs only: after a gap (an event the store refused, or stored elsewhere) start over, so
                    // an answer from here never skips an event the store holds.
                    if (_events.Count > 0 && stored.Seq != _events[^1].Seq + 1)
                    {
                        _events.Clear();
                    }

                    _events.Add(stored);
                }

                if (_events.Count > Capacity)
                {
                    // Dropped a batch's worth at a time, not one by one: each drop moves what is left.
                    _events.RemoveRange(0, _events.Count - (Capacity - RunEventWriter.DefaultBatchSize));
                }
            }
        }

        public IReadOnlyList<RunEventRecord>? After(long afterSeq, int limit)
        {
            lock (_events)
            {
                if (_events.Count == 0 || afterSeq < _events[0].Seq - 1 || afterSeq >= _events[^1].Seq)
                {
                    return null;
                }

                var start = (int)(afterSeq + 1 - _events[0].Seq);
                return _events.GetRange(start, Math.Min(limit, _events.Count - start));
            }
        }
    }
}
