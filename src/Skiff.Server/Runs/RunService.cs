using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Server.Coordination;
using Skiff.Server.Metadata;
using Skiff.Server.Metrics;

namespace Skiff.Server.Runs;

/// <summary>
/// Records runs and their events as agents stream them, and lets any number of clients follow a run:
/// what is stored first, then each new event the moment it is stored (no polling interval).
/// </summary>
/// <remarks>
/// With several servers, the agent streams to whichever server holds its connection, and a follower may be on
/// another: each stored event is announced on the <see cref="IServerBus"/>, and a follower that hears nothing
/// reads the store again after <see cref="IServerBus.Backstop"/> in case a notice was lost.
/// </remarks>
internal sealed class RunService
{
    private const string Topic = "run";

    /// <summary>Events a follower reads from the store at a time: a batch the writer commits (2,000) is one or two reads.</summary>
    internal const int PageSize = 1000;

    /// <summary>How long a follower waits for a store that cannot be reached before its stream ends with an error.</summary>
    private static readonly TimeSpan FollowerPatience = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, RunRecord> _starting = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _changed = new(StringComparer.Ordinal);
    private readonly LiveRunEvents _live = new();
    private readonly IMetadataStore _store;
    private readonly IServerBus _bus;
    private readonly TimeProvider _time;
    private readonly RunEventWriter _events;
    private readonly ServerMetrics _metrics;

    /// <summary>Where runs that start, and runs failed for being lost, are logged.</summary>
    public ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>
    /// Stores agents' events at most <paramref name="eventBatchSize"/> per transaction (1 stores each on its own, for
    /// comparison) until <paramref name="stopping"/>; counts runs and events in <paramref name="metrics"/>.
    /// </summary>
    public RunService(IMetadataStore store, IServerBus bus, TimeProvider time, int eventBatchSize = RunEventWriter.DefaultBatchSize, CancellationToken stopping = default, ServerMetrics? metrics = null)
    {
        _store = store;
        _bus = bus;
        _time = time;
        _metrics = metrics ?? ServerMetrics.Discard;
        _events = new RunEventWriter(store, time, eventBatchSize, StoredAsync, stopping, _metrics);
        bus.Subscribe((topic, runId) =>
        {
            if (topic == Topic)
            {
                Signal(runId);
            }
        });
    }

    /// <summary>Remembers a run about to be started, so its record exists before its first event is stored.</summary>
    public void Starting(RunRecord run) => _starting[run.Id] = run;

    public void StartFailed(string runId) => _starting.TryRemove(runId, out _);

    /// <summary>The agents (one entry per run) on which runs of <paramref name="location"/> are being started through this server and are not recorded yet.</summary>
    public IEnumerable<string?> StartingOn(string location) => _starting.Values.Where(r => r.Location == location).Select(r => r.Agent);

    /// <summary>
    /// Called in receive order for every reply from an agent, before the waiting request sees it. A run's record
    /// waits out a store that cannot be reached (until <paramref name="cancellationToken"/>): the agent has
    /// started the run, and its events can only be stored once the record is.
    /// </summary>
    public async Task HandleReplyAsync(AgentMessage reply, CancellationToken cancellationToken)
    {
        // Forgotten once recorded, not before: a pool that scales counts it meanwhile (StartingOn), and must not miss it in between.
        if (reply is RunStartedReply started && _starting.TryGetValue(started.Run, out var run))
        {
            var tried = false;
            await MetadataOutage.RideOutAsync(
                async () =>
                {
                    try
                    {
                        await _store.CreateRunAsync(run, cancellationToken).ConfigureAwait(false);
                    }
                    catch (MetadataConflictException) when (tried)
                    {
                        // The earlier attempt's connection broke while it committed, and it had recorded the run.
                    }
                    finally
                    {
                        tried = true;
                    }
                },
                _time,
                TimeSpan.MaxValue,
                cancellationToken).ConfigureAwait(false);
            _starting.TryRemove(started.Run, out _);
            _metrics.RunStarted();
            Log.RunStarted(Logger, run.Id, run.Location, run.Job, run.Agent);
        }
    }

    /// <summary>
    /// Queues one event an agent sent, to be stored with others in one transaction (<see cref="RunEventWriter"/>),
    /// in the order they arrive; waits only while the queue is full, holding up the agent's later messages
    /// meanwhile. When the event is its run's end, <paramref name="endStored"/> is called once the end is
    /// committed (every earlier event of the run with it or before it), and the run is ended in the same
    /// transaction. A store that cannot be reached is waited out: the agent sends each event once on a connection,
    /// so one dropped here would be lost until it reconnects, and the run would not end for its followers.
    /// </summary>
    public ValueTask AppendEventAsync(string runId, RunEventJson runEvent, Func<Task>? endStored, CancellationToken cancellationToken) =>
        _events.AppendAsync(
            runId,
            runEvent,
            !runEvent.IsEnd
                ? null
                : () =>
                {
                    RunEnded?.Invoke();
                    return endStored?.Invoke() ?? Task.CompletedTask;
                },
            cancellationToken);

    /// <inheritdoc cref="AppendEventAsync(string, RunEventJson, Func{Task}?, CancellationToken)"/>
    public ValueTask AppendEventAsync(string runId, JsonObject runEvent, Func<Task>? endStored, CancellationToken cancellationToken) =>
        AppendEventAsync(runId, RunEventJson.From(runEvent), endStored, cancellationToken);

    /// <summary>
    /// Ends a run whose agent can no longer report on it, with a <c>run_failed</c> event after its last
    /// stored one, so it ends the way every run does (docs/events.md). Does nothing to a run already ended.
    /// </summary>
    public async Task FailLostRunAsync(RunningRun lost, string reason, CancellationToken cancellationToken)
    {
        TimeSpan? ran = null;
        var failed = await _store.FailRunAsync(
            lost.Id,
            reason,
            (run, seq) => RunEvents.Failed(run.Id, seq, run.FinishedAt!.Value, reason, run.Job, ran = run.FinishedAt.Value - run.StartedAt).ToJsonString(),
            cancellationToken).ConfigureAwait(false);
        if (failed)
        {
            RunEnded?.Invoke();
            _metrics.RunFinished(RunStatuses.Failed, ran);
            Log.RunLost(Logger, lost.Id, reason);
            await ChangedAsync(lost.Id).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Cancels a run still waiting in the run queue: it ends canceled, with a <c>run_canceled</c> event, and never
    /// starts. Returns false when it was not queued (it started meanwhile, or ended).
    /// </summary>
    public async Task<bool> CancelQueuedRunAsync(string runId, CancellationToken cancellationToken)
    {
        const string reason = "canceled while queued; it never started";
        var canceled = await _store.CancelQueuedRunAsync(
            runId,
            reason,
            (run, seq) => RunEvents.Canceled(run.Id, seq, run.FinishedAt!.Value, reason, run.Job).ToJsonString(),
            cancellationToken).ConfigureAwait(false);
        if (canceled)
        {
            _metrics.RunFinished(RunStatuses.Canceled, null); // it never ran: no duration
            await ChangedAsync(runId).ConfigureAwait(false);
        }

        return canceled;
    }

    /// <summary>Called whenever this server stores a run's end: a slot under a concurrency limit may have freed (<see cref="RunQueue"/>).</summary>
    public Action? RunEnded { get; set; }

    /// <summary>The writer committed events of the run: its followers here get them from memory (<see cref="LiveRunEvents"/>).</summary>
    private Task StoredAsync(string runId, IReadOnlyList<RunEventRecord> stored)
    {
        _live.Stored(runId, stored);
        return ChangedAsync(runId);
    }

    private Task ChangedAsync(string runId)
    {
        Signal(runId);
        return _bus.PublishAsync(Topic, runId);
    }

    private void Signal(string runId)
    {
        if (_changed.TryRemove(runId, out var changed))
        {
            changed.TrySetResult();
        }
    }

    /// <summary>
    /// The run's events after <paramref name="afterSeq"/>, as stored JSON. With <paramref name="follow"/>, keeps
    /// going until the run has ended and every event has been delivered.
    /// </summary>
    public async IAsyncEnumerable<(long Seq, string Json)> ReadAsync(string runId, long afterSeq, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var page in ReadPagesAsync(runId, afterSeq, follow, cancellationToken).ConfigureAwait(false))
        {
            foreach (var stored in page)
            {
                yield return (stored.Seq, stored.Json);
            }
        }
    }

    /// <summary>
    /// As <see cref="ReadAsync"/>, a page at a time: the events one read of the store found (up to
    /// <see cref="PageSize"/>), so a stream can write a page and flush once. A page is never empty.
    /// </summary>
    public async IAsyncEnumerable<IReadOnlyList<RunEventRecord>> ReadPagesAsync(string runId, long afterSeq, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // A follower's stream has begun: an error now could only cut it off, so it waits out a short outage.
        var patience = follow ? FollowerPatience : TimeSpan.Zero;
        var readAfterEnd = false;
        if (follow)
        {
            _live.Follow(runId);
        }

        try
        {
            while (true)
            {
                // Take the signal before reading, so an event stored in between is not missed.
                var changed = _changed.GetOrAdd(runId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                var from = afterSeq;
                // A follower that keeps up gets what the writer has just committed from memory; one behind reads the store.
                var events = (follow ? _live.After(runId, from, PageSize) : null)
                    ?? await MetadataOutage.RideOutAsync(() => _store.GetRunEventsAsync(runId, from, PageSize, cancellationToken), _time, patience, cancellationToken).ConfigureAwait(false);
                if (events.Count > 0)
                {
                    afterSeq = events[^1].Seq;
                    yield return events;
                    continue;
                }

                var run = await MetadataOutage.RideOutAsync(() => _store.GetRunAsync(runId, cancellationToken), _time, patience, cancellationToken).ConfigureAwait(false);
                // A queued run has not ended: its follower waits for it to start, as for its events after that.
                if (run is not null && RunStatuses.IsFinal(run.Status) && !readAfterEnd)
                {
                    // It may have ended between the read of its events above and this one (its last events and its
                    // status are stored together, after that read): read once more, so a follower gets the end.
                    readAfterEnd = true;
                    continue;
                }

                if (!follow || run is null || RunStatuses.IsFinal(run.Status))
                {
                    yield break;
                }

                try
                {
                    await changed.Task.WaitAsync(_bus.Backstop, _time, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // No notice: read the store again in case one was lost.
                }
            }
        }
        finally
        {
            if (follow)
            {
                _live.Unfollow(runId);
            }
        }
    }
}
