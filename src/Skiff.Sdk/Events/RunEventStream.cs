namespace Skiff.Sdk.Events;

/// <summary>
/// Stamps a run's events with a sequence number and a time, in one order, and hands them to whoever
/// listens (the protocol connection, the console). Ops emit from many threads at once.
/// </summary>
internal sealed class RunEventStream(string runId, TimeProvider time, Action<RunEvent> sink)
{
    private readonly Lock _gate = new();
    private long _sequence;

    public string RunId => runId;

    public TimeProvider Time => time;

    public void Emit(RunEvent draft)
    {
        lock (_gate)
        {
            // A time the draft brings is kept: a deployed task's events carry when they happened on the pool's worker.
            var stamped = draft with { Run = runId, Seq = ++_sequence, Ts = draft.Ts == default ? time.GetUtcNow() : draft.Ts };
            try
            {
                sink(stamped);
            }
            catch (Exception exception) when (exception is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // A listener that went away must not fail the run; the run's outcome still counts.
            }
        }
    }

    public void Emit(string type, string? op = null) => Emit(new RunEvent { Run = runId, Type = type, Op = op });
}
