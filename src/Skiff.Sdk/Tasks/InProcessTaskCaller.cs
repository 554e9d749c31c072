using Skiff.Sdk.Definitions;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;
using Skiff.Sdk.Tracing;

namespace Skiff.Sdk.Tasks;

/// <summary>
/// Serves task calls in the calling run's own process, for local development (docs/tasks.md, "Local runs"): a call to
/// a pool registered with <see cref="JobCatalog.LocalPool"/> runs that pool's task; a call to any other pool runs the
/// program's own task of that name, as if the program were the pool. The task's input and output still go through
/// JSON, and its retries, logs, output and progress are the same events a deployed call will give.
/// </summary>
internal sealed class InProcessTaskCaller(
    IReadOnlyList<TaskDefinition> ownTasks,
    IReadOnlyDictionary<string, IReadOnlyList<TaskDefinition>> localPools,
    TimeProvider time) : ITaskCaller
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(100);

    public async Task<byte[]> CallAsync(TaskCall call, CancellationToken cancellationToken)
    {
        var task = Find(call);
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
            }));
            var started = time.GetTimestamp();
            var context = new TaskContext(events, origin, call.Op, call.OpAttempt, releaseId: null, progress, cancellationToken);
            try
            {
                // Task.Run: the task's console output is the task's (its own scope in its own flow), and a body that
                // blocks before its first await does not hold up the calling op's siblings.
                var output = await Task.Run(() => RunBodyAsync(task, context, call.Input, new OutputScope(events, call.Op, call.OpAttempt, origin)), CancellationToken.None)
                    .ConfigureAwait(false);
                progress.Flush();
                events.Emit(origin.Stamp(new RunEvent { Run = events.RunId, Type = EventTypes.TaskSucceeded, Op = call.Op, Attempt = call.OpAttempt, DurationMs = Elapsed(started) }));
                return output;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                progress.Flush();
                events.Emit(origin.Stamp(new RunEvent { Run = events.RunId, Type = EventTypes.TaskCanceled, Op = call.Op, Attempt = call.OpAttempt, DurationMs = Elapsed(started) }));
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
                events.Emit(origin.Stamp(new RunEvent { Run = events.RunId, Type = EventTypes.TaskFailed, Op = call.Op, Attempt = call.OpAttempt, Error = error, DurationMs = Elapsed(started) }));
                throw new TaskCallException(
                    call.Pool.ToString(),
                    task.Name,
                    call.TaskId,
                    $"task '{task.Name}' of pool '{call.Pool}' failed{(attempt > 1 ? $" on all {attempt} attempts" : "")}: {error.Type}: {error.Message}",
                    error.Type);
            }
        }
    }

    private TaskDefinition Find(TaskCall call)
    {
        var pool = call.Pool.Name;
        if (localPools.TryGetValue(pool, out var poolTasks))
        {
            return poolTasks.FirstOrDefault(t => t.Name == call.Task) ?? throw new TaskCallException(
                call.Pool.ToString(), call.Task, null,
                $"pool '{pool}' (registered for local runs with LocalPool) declares no task '{call.Task}'; it declares: {List(poolTasks)}.");
        }

        return ownTasks.FirstOrDefault(t => t.Name == call.Task) ?? throw new TaskCallException(
            call.Pool.ToString(), call.Task, null,
            $"this local run cannot serve task '{call.Task}' of pool '{pool}': the program declares no task '{call.Task}' (it declares: {List(ownTasks)}) "
            + $"and no local pool '{pool}'{(localPools.Count == 0 ? "" : $" (local pools: {string.Join(", ", localPools.Keys)})")}. "
            + $"Declare the task here with jobs.Task(\"{call.Task}\", ...), or reference the pool's project and register its tasks with jobs.LocalPool(\"{pool}\", ...).");
    }

    private static string List(IReadOnlyList<TaskDefinition> tasks) => tasks.Count == 0 ? "none" : string.Join(", ", tasks.Select(t => t.Name));

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

    private long Elapsed(long started) => (long)time.GetElapsedTime(started).TotalMilliseconds;
}
