using Skiff.Sdk.Definitions;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;
using Skiff.Sdk.Tracing;

namespace Skiff.Sdk.Tasks;

/// <summary>
/// Runs one call of a task with its retry policy, wherever it is served: in the calling run's process
/// (<see cref="InProcessTaskCaller"/>) or in a pool's code server for a deployed call (docs/tasks.md). Its events
/// (<c>task_*</c>, and the task's logs, output and progress) go to <see cref="TaskCall.Events"/>, attributed to the
/// calling op and the task.
/// </summary>
internal static class TaskAttempts
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Runs the call's attempts until one succeeds or the retry policy gives up. An attempt that returns more than
    /// <paramref name="maxOutputBytes"/> (a deployed call's result travels in one frame; null for no limit, in-process)
    /// fails the call with no further attempt, since the same body would return as much again.
    /// </summary>
    public static async Task<byte[]> RunAsync(TaskDefinition task, TaskCall call, string? releaseId, TimeProvider time, CancellationToken cancellationToken, int? maxOutputBytes = null)
    {
        var events = call.Events;
        var progress = new ProgressReporter(events, call.Op, ProgressInterval, new TaskOrigin(call.Pool.Name, task.Name, call.TaskId, null));
        using var span = Traces.Sdk.HasListeners() ? Traces.Sdk.StartActivity($"task {call.Pool.Name}/{task.Name}", System.Diagnostics.ActivityKind.Internal, Traces.Parent(call.TraceParent)) : null;
        span?.SetTag(Traces.Op, call.Op);
        for (var attempt = 1; ; attempt++)
        {
            var origin = new TaskOrigin(call.Pool.Name, task.Name, call.TaskId, attempt);
            events.Emit(origin.Stamp(new RunEvent
            {
                Run = events.RunId,
                Type = EventTypes.TaskStarted,
                Op = call.Op,
                Attempt = call.OpAttempt,
                Pin = attempt == 1 ? call.Pool.ReleasePrefix : null,
                RedeliveryReason = attempt == 1 ? call.RedeliveryReason : null,
            }));
            var started = time.GetTimestamp();
            var context = new TaskContext(events, origin, call.Op, call.OpAttempt, releaseId, progress, cancellationToken);
            byte[] output;
            try
            {
                // Task.Run: the task's console output is the task's (its own scope in its own flow), and a body that
                // blocks before its first await does not hold up the calling op's siblings.
                output = await Task.Run(() => RunBodyAsync(task, context, call.Input, new OutputScope(events, call.Op, call.OpAttempt, origin)), CancellationToken.None)
                    .ConfigureAwait(false);
                progress.Flush();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                progress.Flush();
                events.Emit(origin.Stamp(new RunEvent { Run = events.RunId, Type = EventTypes.TaskCanceled, Op = call.Op, Attempt = call.OpAttempt, DurationMs = Elapsed(time, started) }));
                throw;
            }
            catch (Exception exception)
            {
                progress.Flush();
                var error = ErrorInfo.From(exception);
                if (attempt < task.Retry.MaxAttempts && !cancellationToken.IsCancellationRequested)
                {
                    var delay = task.Retry.DelayBefore(attempt + 1);
                    events.Emit(origin.Stamp(new RunEvent
                    {
                        Run = events.RunId,
                        Type = EventTypes.TaskRetrying,
                        Op = call.Op,
                        Attempt = call.OpAttempt,
                        Error = error,
                        DelayMs = (long)delay.TotalMilliseconds,
                    }));
                    try
                    {
                        await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        events.Emit(origin.Stamp(new RunEvent { Run = events.RunId, Type = EventTypes.TaskCanceled, Op = call.Op, Attempt = call.OpAttempt }));
                        throw;
                    }

                    continue;
                }

                span.Failed(exception);
                events.Emit(origin.Stamp(new RunEvent { Run = events.RunId, Type = EventTypes.TaskFailed, Op = call.Op, Attempt = call.OpAttempt, Error = error, DurationMs = Elapsed(time, started) }));
                throw new TaskCallException(
                    call.Pool.ToString(),
                    task.Name,
                    call.TaskId,
                    $"task '{task.Name}' of pool '{call.Pool}' failed{(attempt > 1 ? $" on all {attempt} attempts" : "")}: {error.Type}: {error.Message}",
                    error.Type);
            }

            if (output.Length > maxOutputBytes)
            {
                // Decided here, before any task_succeeded: the calling run shows one failure, not a success and then one.
                var message = $"task '{task.Name}' of pool '{call.Pool}' returned {output.Length} bytes of output; a deployed task's output can be at most {maxOutputBytes} bytes ({maxOutputBytes / 1024} KiB). "
                    + "Store large results elsewhere (a blob or a file) and return a reference to them.";
                var tooLarge = new ErrorInfo(typeof(InvalidOperationException).FullName!, message, null);
                span.Failed(message);
                events.Emit(origin.Stamp(new RunEvent { Run = events.RunId, Type = EventTypes.TaskFailed, Op = call.Op, Attempt = call.OpAttempt, Error = tooLarge, DurationMs = Elapsed(time, started) }));
                throw new TaskCallException(call.Pool.ToString(), task.Name, call.TaskId, message, tooLarge.Type);
            }

            events.Emit(origin.Stamp(new RunEvent { Run = events.RunId, Type = EventTypes.TaskSucceeded, Op = call.Op, Attempt = call.OpAttempt, DurationMs = Elapsed(time, started) }));
            return output;
        }
    }

    /// <summary>Runs one attempt of the task's body with its console output captured, closing the output before the attempt is reported done.</summary>
    private static async Task<byte[]> RunBodyAsync(TaskDefinition task, TaskContext context, byte[] input, OutputScope output)
    {
        output.Enter();
        try
        {
            return await task.Body(context, input).ConfigureAwait(false);
        }
        finally
        {
            output.Close();
        }
    }

    private static long Elapsed(TimeProvider time, long started) => (long)time.GetElapsedTime(started).TotalMilliseconds;
}
