using System.Text.Json;
using Skiff.Sdk.Events;
using Skiff.Sdk.Protocol;

namespace Skiff.Sdk.Tasks;

/// <summary>
/// The events a task gives while it runs for a deployed call, kept to go back to the calling run with its result.
/// They travel in one frame, so at most <paramref name="budgetBytes"/> of them are kept: the first half of the budget
/// and the last half (how the task started and how it ended), with one warning in between saying how many were left out.
/// </summary>
internal sealed class GatheredTaskEvents(string runId, string task, int budgetBytes = ProtocolInfo.MaxTaskEventBytes)
{
    private readonly Lock _gate = new();
    private readonly List<RunEvent> _first = [];
    private readonly Queue<(RunEvent Event, int Bytes)> _last = new();
    private int _firstBytes;
    private int _lastBytes;
    private int _leftOut;
    private long _leftOutBytes;

    public void Add(RunEvent runEvent)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(runEvent, ProtocolJson.Wire.RunEvent).Length;
        lock (_gate)
        {
            if (_last.Count == 0 && _leftOut == 0 && _firstBytes + bytes <= budgetBytes / 2)
            {
                _first.Add(runEvent);
                _firstBytes += bytes;
                return;
            }

            _last.Enqueue((runEvent, bytes));
            _lastBytes += bytes;
            while (_lastBytes > budgetBytes / 2)
            {
                var (_, dropped) = _last.Dequeue();
                _lastBytes -= dropped;
                _leftOut++;
                _leftOutBytes += dropped;
            }
        }
    }

    /// <summary>
    /// The events kept, in order, with their numbers in the task's stream (the calling run's stream numbers them again, and
    /// skips those it had live); the warning about events left out is numbered 0, never one of theirs.
    /// </summary>
    public IReadOnlyList<RunEvent> ToList()
    {
        lock (_gate)
        {
            var kept = new List<RunEvent>(_first.Count + _last.Count + 1);
            kept.AddRange(_first);
            if (_leftOut > 0)
            {
                kept.Add(new RunEvent
                {
                    Run = runId,
                    Type = EventTypes.Log,
                    Level = "warn",
                    Seq = 0,
                    Message = $"{_leftOut} events ({_leftOutBytes} bytes) of task '{task}' were left out here: at most {budgetBytes} bytes of a deployed task's events go back to the calling run. Log less from the task, or keep large detail elsewhere (a blob or a file).",
                });
            }

            kept.AddRange(_last.Select(l => l.Event));
            return kept;
        }
    }
}
