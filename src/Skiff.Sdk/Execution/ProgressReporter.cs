using Skiff.Sdk.Events;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk.Execution;

/// <summary>
/// Coalesces an op's progress reports: a tight loop may report on every item, but at most one
/// <c>progress</c> event per interval leaves the process, and the last value is always sent. A task's reporter
/// also stamps the task (<paramref name="task"/>).
/// </summary>
internal sealed class ProgressReporter(RunEventStream events, string op, TimeSpan interval, TaskOrigin? task = null)
{
    private readonly Lock _gate = new();
    private long _lastSent = long.MinValue;
    private (double Fraction, string? Message)? _pending;

    public void Report(double fraction, string? message)
    {
        if (double.IsNaN(fraction))
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), "Progress is a fraction from 0 to 1, not NaN.");
        }

        fraction = Math.Clamp(fraction, 0, 1);
        lock (_gate)
        {
            var now = events.Time.GetTimestamp();
            if (_lastSent != long.MinValue && events.Time.GetElapsedTime(_lastSent, now) < interval && fraction < 1)
            {
                _pending = (fraction, message);
                return;
            }

            _lastSent = now;
            _pending = null;
            Send(fraction, message);
        }
    }

    /// <summary>Sends the last value that was held back, if any. Called when the op ends.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            if (_pending is { } pending)
            {
                _pending = null;
                Send(pending.Fraction, pending.Message);
            }
        }
    }

    private void Send(double fraction, string? message)
    {
        var e = new RunEvent { Run = events.RunId, Type = EventTypes.Progress, Op = op, Fraction = fraction, Message = message };
        events.Emit(task is null ? e : task.Stamp(e));
    }
}
