using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Sdk.Events;
using Skiff.Sdk.Protocol;

namespace Skiff.Sdk.Tasks;

/// <summary>
/// Task calls of the runs a code server serves on an agent (docs/tasks.md, "Deployed runs"): each call goes to the agent
/// as a <c>call_task</c> frame; the agent passes it to the server, which puts it on the pool's queue, and the call ends
/// with the <c>task_result</c> the agent sends back. The task's events come while it runs (<c>task_events</c>, relayed by
/// the pool's agent, the server and this run's agent) and are emitted into the calling run as they come; those that did
/// not come live (a server that cannot relay them, events left out under load) come with the result and are emitted then.
/// </summary>
internal sealed class DeployedTaskCaller(Action<CodeServerMessage> send) : ITaskCaller
{
    private readonly ConcurrentDictionary<string, Waiting> _waiting = new(StringComparer.Ordinal);

    /// <summary>A call waiting for its result, and the task events it has emitted (by delivery and number in the task's stream).</summary>
    private sealed class Waiting(TaskCall call)
    {
        private readonly HashSet<(int? Delivery, long Seq)> _emitted = [];

        // The last number that came live, by delivery (a task's events are numbered 1, 2, … in each delivery's stream), and
        // whether a gap in them was noted: once, so a flood under load gives one marker and not one per batch.
        private readonly Dictionary<int, long> _lastLive = [];
        private bool _gapNoted;

        /// <summary>
        /// Emits an event that came live. The first one after a gap in the numbers (events left out on the way under load:
        /// on the worker, its agent or the server) is preceded by one warning saying so; they come with the result.
        /// </summary>
        public void EmitLive(RunEvent taskEvent)
        {
            lock (_emitted)
            {
                if (taskEvent.Seq > 0)
                {
                    var delivery = taskEvent.Delivery ?? 0;
                    var last = _lastLive.GetValueOrDefault(delivery);
                    if (taskEvent.Seq > last + 1 && !_gapNoted)
                    {
                        _gapNoted = true;
                        var gap = taskEvent.Seq - last - 1;
                        EmitNote($"{gap} events of task '{call.Task}' of pool '{call.Pool}' were left out of the live stream here (under load, they could not be sent on as fast as the task gave them), "
                            + "and later gaps are not noted again. They come with the task's result, within its budget for events.");
                    }

                    _lastLive[delivery] = Math.Max(last, taskEvent.Seq);
                }

                Emit(taskEvent);
            }
        }

        /// <summary>
        /// Emits the events that came with the result and did not come live. The worker's warning about events left out of
        /// the result (numbered 0) is said again here with the count of those that reached this run neither live nor with
        /// the result: the worker cannot know which came live.
        /// </summary>
        public void EmitResult(IReadOnlyList<RunEvent> taskEvents)
        {
            lock (_emitted)
            {
                // The result's events are all of the delivery that ended the call, numbered 1 to the last one it gave.
                var numbered = taskEvents.Where(e => e.Seq > 0).ToList();
                var delivery = numbered.Count > 0 ? numbered[^1].Delivery : null;
                var given = numbered.Where(e => e.Delivery == delivery).Select(e => e.Seq).DefaultIfEmpty(0).Max();
                var reached = _emitted.Where(e => e.Delivery == delivery).Select(e => e.Seq)
                    .Union(numbered.Where(e => e.Delivery == delivery).Select(e => e.Seq))
                    .Count(seq => seq <= given);
                var missing = given - reached;
                foreach (var taskEvent in taskEvents)
                {
                    if (taskEvent.Seq != 0)
                    {
                        Emit(taskEvent);
                    }
                    else if (taskEvent.Type != EventTypes.Log || taskEvent.Level != "warn")
                    {
                        Emit(taskEvent);
                    }
                    else if (missing > 0)
                    {
                        EmitNote($"{missing} events of task '{call.Task}' of pool '{call.Pool}' reached this run neither live nor with its result: at most {ProtocolInfo.MaxTaskEventBytes} bytes of a deployed task's events "
                            + "come back with its result (the first and the last of them). Log less from the task, or keep large detail elsewhere (a blob or a file).");
                    }
                }
            }
        }

        private void EmitNote(string message) =>
            call.Events.Emit(new TaskOrigin(call.Pool.Name, call.Task, call.TaskId, null).Stamp(
                new RunEvent { Run = call.Events.RunId, Type = EventTypes.Log, Level = "warn", Op = call.Op, Attempt = call.OpAttempt, Message = message }));

        public TaskCompletionSource<TaskResultNotice> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>
        /// Emits a task event into the calling run unless it was emitted already: the worker's events become the calling
        /// run's, numbered in its stream, attributed to the calling op, and timed when they happened on the worker.
        /// </summary>
        private void Emit(RunEvent taskEvent)
        {
            // Numbered 0: not one of the task's own (a note from the way, such as why the call waits), emitted as it comes.
            if (taskEvent.Seq != 0 && !_emitted.Add((taskEvent.Delivery, taskEvent.Seq)))
            {
                return;
            }

            call.Events.Emit(taskEvent with { Op = call.Op, Attempt = call.OpAttempt });
        }
    }

    public async Task<byte[]> CallAsync(TaskCall call, CancellationToken cancellationToken)
    {
        // The op's attempt is part of the call: a retried op runs the task again (under the same task id, its side-effect
        // key) instead of getting the queue's recorded result of its earlier attempt back.
        var callId = $"{call.TaskId}/{call.OpAttempt}";
        if (call.Input.Length > ProtocolInfo.MaxTaskPayloadBytes)
        {
            // Sent on, it would make the worker's run_task frame too large to be read, and the call would never end.
            throw new TaskCallException(call.Pool.ToString(), call.Task, null,
                $"op '{call.Op}' called task '{call.Task}' of pool '{call.Pool}' with {call.Input.Length} bytes of input; a deployed task's input can be at most {ProtocolInfo.MaxTaskPayloadBytes} bytes, and nothing was queued. Pass a reference instead (a blob or a file path the task reads).");
        }

        var waiting = new Waiting(call);
        if (!_waiting.TryAdd(callId, waiting))
        {
            throw new InvalidOperationException($"task call {callId} is already waiting for its result");
        }

        TaskResultNotice notice;
        try
        {
            send(new CallTaskMessage(callId, call.TaskId, call.Pool.Name, call.Task, call.Events.RunId, call.Op, call.OpAttempt,
                JsonNode.Parse(call.Input), call.Pool.ReleasePrefix, call.TraceParent, Live: true));
            notice = await waiting.Result.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            send(new CancelCallMessage(callId));
            call.Events.Emit(new TaskOrigin(call.Pool.Name, call.Task, call.TaskId, null).Stamp(
                new RunEvent { Run = call.Events.RunId, Type = EventTypes.TaskCanceled, Op = call.Op, Attempt = call.OpAttempt }));
            throw;
        }
        finally
        {
            _waiting.TryRemove(callId, out _);
        }

        var outcome = notice.Outcome;
        waiting.EmitResult(outcome.Events ?? []);

        if (outcome.Succeeded)
        {
            return JsonSerializer.SerializeToUtf8Bytes(outcome.Output, ProtocolJson.Wire.JsonNode);
        }

        var error = outcome.Error;
        var (taskId, message, errorType) = notice.Code switch
        {
            "refused" => (null, $"op '{call.Op}' called task '{call.Task}' of pool '{call.Pool}'; the call was refused and nothing was queued: {error?.Message}", null),
            "dead_lettered" => (call.TaskId, $"task '{call.Task}' of pool '{call.Pool}' was given up on: {error?.Message}", error?.Type),
            // The worker's words, as a local run says them ("task 'x' of pool 'p' failed on all 3 attempts: …").
            _ => (call.TaskId, error?.Message ?? $"task '{call.Task}' of pool '{call.Pool}' failed", error?.Type),
        };
        if (notice.Code == "dead_lettered")
        {
            // No worker reported the end (each died or lost its lease), so no task_failed came with it.
            call.Events.Emit(new TaskOrigin(call.Pool.Name, call.Task, call.TaskId, null).Stamp(
                new RunEvent { Run = call.Events.RunId, Type = EventTypes.TaskFailed, Op = call.Op, Attempt = call.OpAttempt, Error = error }));
        }

        throw new TaskCallException(call.Pool.ToString(), call.Task, taskId, message, errorType is { Length: > 0 } ? errorType : null);
    }

    /// <summary>The agent's answer to a call; one for a call nobody waits for any more (canceled) is let go.</summary>
    public void Complete(TaskResultNotice notice)
    {
        if (_waiting.TryGetValue(notice.Call, out var waiting))
        {
            waiting.Result.TrySetResult(notice);
        }
    }

    /// <summary>
    /// Events of a call's task as it runs on the pool: emitted into the calling run now. Those of a call nobody waits for
    /// any more (it ended, or the run was canceled, or it ended altogether) are let go.
    /// </summary>
    public void Relay(TaskEventsNotice notice)
    {
        if (_waiting.TryGetValue(notice.Call, out var waiting) && !waiting.Result.Task.IsCompleted)
        {
            foreach (var taskEvent in notice.Events)
            {
                waiting.EmitLive(taskEvent);
            }
        }
    }
}
