using System.Text.Json.Nodes;
using System.Threading.Channels;
using Skiff.Core.Messaging;
using Skiff.Server.Metadata;
using Skiff.Server.Metrics;

namespace Skiff.Server.Runs;

/// <summary>
/// Stores the run events agents send to this server by group commit: events wait in one ordered queue, and a
/// single writer stores everything waiting (up to <see cref="BatchSize"/>) in one transaction. A store that
/// cannot keep up fills the queue, and then <see cref="AppendAsync"/> waits, which holds up the agent's socket
/// read loop (and so the agent) instead of growing memory.
/// </summary>
/// <remarks>
/// One transaction per event was the limit: with SQLite's synchronous=FULL each is an fsync, and a job that
/// logged 50,000 lines in 0.67 s was stored at 300–6,000 events/s. Nothing is acknowledged before it is
/// committed: a run's end is acknowledged to its agent (<c>run_stored</c>, after which the agent forgets the
/// run's events) only once the batch holding it has committed, and every earlier event of the run was in that
/// batch or an earlier one. Events queued but not committed when the server dies are still in the agent's
/// journal, and are sent again when it reconnects (docs/events.md).
/// </remarks>
internal sealed class RunEventWriter
{
    /// <summary>
    /// Events per transaction. Measured on SQLite (bench events): 2,000 per batch stores ~50,000+ events/s; larger
    /// batches add little and hold the file's write lock longer.
    /// </summary>
    public const int DefaultBatchSize = 2000;

    private readonly Channel<Queued> _queue;
    private readonly IMetadataStore _store;
    private readonly TimeProvider _time;
    private readonly Func<string, IReadOnlyList<RunEventRecord>, Task> _changed;
    private readonly CancellationToken _stopping;
    private readonly ServerMetrics _metrics;

    /// <summary>
    /// Starts the writer; <paramref name="changed"/> is called once per batch for each run that had events in it, after the
    /// commit, with those of them it stored as new rows (not resends), in order. Batches, stored events and runs ended are
    /// counted in <paramref name="metrics"/>.
    /// </summary>
    public RunEventWriter(IMetadataStore store, TimeProvider time, int batchSize, Func<string, IReadOnlyList<RunEventRecord>, Task> changed, CancellationToken stopping, ServerMetrics? metrics = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        _metrics = metrics ?? ServerMetrics.Discard;
        _store = store;
        _time = time;
        _changed = changed;
        _stopping = stopping;
        BatchSize = batchSize;

        // Room for a few batches: the next one fills while one commits.
        _queue = Channel.CreateBounded<Queued>(new BoundedChannelOptions(batchSize * 4)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _metrics.WatchRunEventQueue(() => _queue.Reader.Count);
        Writing = Task.Run(WriteLoopAsync, CancellationToken.None);
    }

    public int BatchSize { get; }

    /// <summary>The writer's loop; ends when the server stops.</summary>
    public Task Writing { get; }

    /// <summary>
    /// Queues one event in arrival order, waiting while the queue is full. <paramref name="endStored"/> is called
    /// once the event, being its run's end, has been dealt with durably: stored (or found stored) and the run
    /// ended, or the run found ended already. Not for an event of an unknown run, nor one the store refused.
    /// </summary>
    /// <remarks>The event is stored as its text came: only a run's end is read further (its reason and duration).</remarks>
    public ValueTask AppendAsync(string runId, RunEventJson runEvent, Func<Task>? endStored, CancellationToken cancellationToken)
    {
        var seq = runEvent.Seq ?? 0;
        if (!runEvent.IsEnd)
        {
            return _queue.Writer.WriteAsync(new Queued(new RunEventToStore(runId, seq, runEvent.Json), null, null), cancellationToken);
        }

        var status = runEvent.Type switch
        {
            "run_succeeded" => RunStatuses.Succeeded,
            "run_canceled" => RunStatuses.Canceled,
            _ => RunStatuses.Failed,
        };
        var end = runEvent.ToJsonObject();
        var durationMs = end["duration_ms"] is JsonValue duration && duration.TryGetValue<long>(out var ms) ? ms : (long?)null;
        var reason = end["reason"] is JsonValue reasonValue && reasonValue.TryGetValue<string>(out var text) ? text : null;
        return _queue.Writer.WriteAsync(new Queued(new RunEventToStore(runId, seq, runEvent.Json, status, reason), endStored, durationMs), cancellationToken);
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<Queued>(BatchSize);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(_stopping).ConfigureAwait(false))
            {
                // Whatever arrived while the last batch committed goes in the next one: no waiting to fill it, so a
                // lone event costs one commit of latency and a flood is stored in large batches.
                batch.Clear();
                while (batch.Count < BatchSize && _queue.Reader.TryRead(out var queued))
                {
                    batch.Add(queued);
                }

                var storing = _time.GetTimestamp();
                var outcomes = await StoreAsync(batch).ConfigureAwait(false);
                Count(batch, outcomes, _time.GetElapsedTime(storing));
                foreach (var (runId, stored) in StoredByRun(batch, outcomes))
                {
                    try
                    {
                        await _changed(runId, stored).ConfigureAwait(false);
                    }
                    catch (Exception exception) when (exception is not (OperationCanceledException or ObjectDisposedException))
                    {
                        // A notice that could not go out (the bus's database is away): followers elsewhere read the
                        // store again after the bus's backstop; the events are stored either way.
                    }
                }

                for (var i = 0; i < batch.Count; i++)
                {
                    if (batch[i].EndStored is { } endStored && outcomes[i] is RunEventOutcome.Stored or RunEventOutcome.Ignored)
                    {
                        // Not awaited: one agent's slow socket must not hold up every other agent's events.
                        _ = endStored();
                    }
                }
            }
        }
        catch (Exception exception) when (exception is OperationCanceledException or ObjectDisposedException)
        {
            // The server is stopping. What is still queued was never acknowledged; the agents send it again.
        }
    }

    /// <summary>
    /// Stores a batch, waiting out a store that cannot be reached (nothing is dropped, the order is kept). A batch
    /// the store refuses otherwise is stored again one event at a time, so only the event it refuses is lost, as
    /// when each event had its own transaction; that one gets no outcome (null).
    /// </summary>
    private async Task<IReadOnlyList<RunEventOutcome?>> StoreAsync(List<Queued> batch)
    {
        var events = batch.Select(q => q.Event).ToList();
        try
        {
            var outcomes = await MetadataOutage.RideOutAsync(() => _store.AppendRunEventsAsync(events, _stopping), _time, TimeSpan.MaxValue, _stopping).ConfigureAwait(false);
            return [.. outcomes.Select(o => (RunEventOutcome?)o)];
        }
        catch (Exception exception) when (exception is not (OperationCanceledException or ObjectDisposedException))
        {
            var outcomes = new RunEventOutcome?[events.Count];
            if (events.Count == 1)
            {
                return outcomes;
            }

            for (var i = 0; i < events.Count; i++)
            {
                try
                {
                    var one = events[i];
                    outcomes[i] = (await MetadataOutage.RideOutAsync(() => _store.AppendRunEventsAsync([one], _stopping), _time, TimeSpan.MaxValue, _stopping).ConfigureAwait(false))[0];
                }
                catch (Exception refused) when (refused is not (OperationCanceledException or ObjectDisposedException))
                {
                    // This event cannot be stored (the store refuses it, not an outage); the others can.
                }
            }

            return outcomes;
        }
    }

    /// <summary>Each run with events in the batch, with those of them stored as new rows, in order.</summary>
    private static Dictionary<string, List<RunEventRecord>> StoredByRun(List<Queued> batch, IReadOnlyList<RunEventOutcome?> outcomes)
    {
        var runs = new Dictionary<string, List<RunEventRecord>>(StringComparer.Ordinal);
        for (var i = 0; i < batch.Count; i++)
        {
            var runEvent = batch[i].Event;
            if (!runs.TryGetValue(runEvent.RunId, out var stored))
            {
                runs[runEvent.RunId] = stored = [];
            }

            if (outcomes[i] is RunEventOutcome.Stored)
            {
                stored.Add(new RunEventRecord(runEvent.Seq, runEvent.Json));
            }
        }

        return runs;
    }

    private void Count(List<Queued> batch, IReadOnlyList<RunEventOutcome?> outcomes, TimeSpan elapsed)
    {
        var stored = 0;
        for (var i = 0; i < batch.Count; i++)
        {
            if (outcomes[i] is not RunEventOutcome.Stored)
            {
                continue;
            }

            stored++;
            if (batch[i].Event.EndStatus is { } status)
            {
                // An end stored now (not a resend) ends its run here; Ignored ends may end a run too, but were counted
                // by whichever server stored them first.
                _metrics.RunFinished(status, batch[i].DurationMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null);
            }
        }

        _metrics.RunEventsStored(batch.Count, stored, elapsed);
    }

    // DurationMs: how long the run ran, when the event is its end and says so.
    private sealed record Queued(RunEventToStore Event, Func<Task>? EndStored, long? DurationMs);
}
