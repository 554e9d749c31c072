using System.Diagnostics;
using System.Text.Json;
using Skiff.Sdk.Definitions;
using Skiff.Sdk.Events;
using Skiff.Sdk.Tasks;
using Skiff.Sdk.Tracing;

namespace Skiff.Sdk.Execution;

/// <summary>
/// Runs one job: every op as soon as its dependencies succeeded, independent ops concurrently, retries
/// by each op's policy, dependents of a failed op skipped, cancellation through every op's token.
/// Traced as a span for the run, one per op inside it and one per attempt inside that (docs/traces.md): an op's
/// own spans, from its own ActivitySource, nest under its attempt.
/// </summary>
internal sealed class RunExecutor(TimeProvider time)
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>The span the run continues (the agent's, from the start request's traceparent); default starts a new trace.</summary>
    public ActivityContext Parent { get; init; }

    /// <summary>
    /// Where the ops' task calls go. A deployed run's calls fail, saying task calls are not available there yet; the
    /// local runner serves them in-process.
    /// </summary>
    public ITaskCaller Tasks { get; init; } = UnavailableTaskCaller.Instance;

    private enum OpState
    {
        Succeeded,
        Failed,
        Canceled,
        Skipped,
    }

    private sealed record OpResult(OpState State, byte[]? Output = null, ErrorInfo? Error = null);

    public async Task<RunOutcome> ExecuteAsync(
        JobDefinition job,
        JobParameters parameters,
        string? releaseId,
        RunEventStream events,
        CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        // Asked first so that an untraced run does not even build the span's name.
        using var span = Traces.Sdk.HasListeners() ? Traces.Sdk.StartActivity($"run {job.Name}", ActivityKind.Internal, Parent) : null;
        span?.SetTag(Traces.Run, events.RunId);
        span?.SetTag(Traces.Job, job.Name);
        span?.SetTag(Traces.Release, releaseId);
        span?.SetTag(Traces.Location, Environment.GetEnvironmentVariable("SKIFF_LOCATION"));
        events.Emit(new RunEvent
        {
            Run = events.RunId,
            Type = EventTypes.RunStarted,
            Job = job.Name,
            Release = releaseId,
            Parameters = SdkJson.ToElements(parameters.All),
        });

        // What the run's code writes to the console outside any op (a task started before the ops, say) is the run's.
        var runOutput = new OutputScope(events, null, null).Enter();
        var results = new Dictionary<string, Task<OpResult>>(StringComparer.Ordinal);
        foreach (var op in job.Ops)
        {
            var dependencies = op.DependsOn.Select(name => (Name: name, Result: results[name])).ToList();
            results[op.Name] = RunOpAsync(job, op, dependencies, parameters, releaseId, events, cancellationToken);
        }

        var finished = await Task.WhenAll(results.Values).ConfigureAwait(false);
        runOutput.Close();
        var duration = (long)time.GetElapsedTime(started).TotalMilliseconds;
        var failed = job.Ops.Zip(finished).FirstOrDefault(pair => pair.Second.State == OpState.Failed);
        if (failed.First is not null)
        {
            span.Failed($"op '{failed.First.Name}' failed: {failed.Second.Error?.Message}");
            events.Emit(new RunEvent
            {
                Run = events.RunId,
                Type = EventTypes.RunFailed,
                Job = job.Name,
                DurationMs = duration,
                Reason = $"op '{failed.First.Name}' failed: {failed.Second.Error?.Message}",
                Error = failed.Second.Error,
            });
            return RunOutcome.Failed;
        }

        if (finished.Any(result => result.State is OpState.Canceled or OpState.Skipped) || cancellationToken.IsCancellationRequested)
        {
            events.Emit(new RunEvent { Run = events.RunId, Type = EventTypes.RunCanceled, Job = job.Name, DurationMs = duration, Reason = "the run was canceled" });
            return RunOutcome.Canceled;
        }

        events.Emit(new RunEvent { Run = events.RunId, Type = EventTypes.RunSucceeded, Job = job.Name, DurationMs = duration });
        return RunOutcome.Succeeded;
    }

    private async Task<OpResult> RunOpAsync(
        JobDefinition job,
        OpDefinition op,
        IReadOnlyList<(string Name, Task<OpResult> Result)> dependencies,
        JobParameters parameters,
        string? releaseId,
        RunEventStream events,
        CancellationToken cancellationToken)
    {
        // Yield first so that declaring the ops never runs any of them synchronously.
        await Task.Yield();
        var inputs = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (name, task) in dependencies)
        {
            var result = await task.ConfigureAwait(false);
            if (result.State != OpState.Succeeded)
            {
                return Skip(events, op, $"dependency '{name}' {result.State.ToString().ToLowerInvariant()}");
            }

            inputs[name] = result.Output!;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return Skip(events, op, "the run was canceled");
        }

        var progress = new ProgressReporter(events, op.Name, ProgressInterval);
        using var opSpan = Traces.Sdk.HasListeners() ? Traces.Sdk.StartActivity($"op {op.Name}") : null;
        opSpan?.SetTag(Traces.Run, events.RunId);
        opSpan?.SetTag(Traces.Op, op.Name);
        for (var attempt = 1; ; attempt++)
        {
            events.Emit(new RunEvent { Run = events.RunId, Type = EventTypes.OpStarted, Op = op.Name, Attempt = attempt });
            var started = time.GetTimestamp();
            // Current while the body runs (Task.Run below takes it along), so the op's own spans are its children.
            using var attemptSpan = Traces.Sdk.StartActivity("attempt");
            attemptSpan?.SetTag(Traces.Op, op.Name);
            attemptSpan?.SetTag(Traces.Attempt, attempt);
            var context = new OpContext(events, job.Name, releaseId, op.Name, attempt, parameters, inputs, progress, cancellationToken)
            {
                TraceParent = Traces.Traceparent(attemptSpan),
                Tasks = Tasks,
            };
            try
            {
                // Task.Run: an op body that blocks before its first await must not hold up its siblings.
                var output = await Task.Run(() => RunBodyAsync(op, context, new OutputScope(events, op.Name, attempt)), CancellationToken.None).ConfigureAwait(false);
                var json = JsonSerializer.SerializeToUtf8Bytes(output, output?.GetType() ?? typeof(object), SdkJson.Options);
                progress.Flush();
                events.Emit(new RunEvent { Run = events.RunId, Type = EventTypes.OpSucceeded, Op = op.Name, Attempt = attempt, DurationMs = Elapsed(started) });
                return new OpResult(OpState.Succeeded, json);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                progress.Flush();
                events.Emit(new RunEvent { Run = events.RunId, Type = EventTypes.OpCanceled, Op = op.Name, Attempt = attempt, DurationMs = Elapsed(started) });
                return new OpResult(OpState.Canceled);
            }
            catch (Exception exception)
            {
                progress.Flush();
                attemptSpan.Failed(exception);
                // Ended here, not at the end of the loop's scope: the retry's wait belongs to the op, not to this attempt.
                attemptSpan?.Dispose();
                var error = ErrorInfo.From(exception);
                if (attempt < op.Retry.MaxAttempts && !cancellationToken.IsCancellationRequested)
                {
                    var delay = op.Retry.DelayBefore(attempt + 1);
                    events.Emit(new RunEvent
                    {
                        Run = events.RunId,
                        Type = EventTypes.OpRetrying,
                        Op = op.Name,
                        Attempt = attempt,
                        Error = error,
                        DelayMs = (long)delay.TotalMilliseconds,
                    });
                    try
                    {
                        await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        events.Emit(new RunEvent { Run = events.RunId, Type = EventTypes.OpCanceled, Op = op.Name, Attempt = attempt });
                        return new OpResult(OpState.Canceled);
                    }

                    continue;
                }

                opSpan.Failed(exception);
                events.Emit(new RunEvent { Run = events.RunId, Type = EventTypes.OpFailed, Op = op.Name, Attempt = attempt, Error = error, DurationMs = Elapsed(started) });
                return new OpResult(OpState.Failed, Error: error);
            }
        }
    }

    /// <summary>Runs an op's body with its console output captured; the op's last unfinished line is sent before it is reported done.</summary>
    private static async Task<object?> RunBodyAsync(OpDefinition op, OpContext context, OutputScope output)
    {
        output.Enter();
        try
        {
            return await op.Body(context).ConfigureAwait(false);
        }
        finally
        {
            output.Close();
        }
    }

    private long Elapsed(long started) => (long)time.GetElapsedTime(started).TotalMilliseconds;

    private static OpResult Skip(RunEventStream events, OpDefinition op, string reason)
    {
        events.Emit(new RunEvent { Run = events.RunId, Type = EventTypes.OpSkipped, Op = op.Name, Reason = reason });
        return new OpResult(OpState.Skipped);
    }
}
