using System.Text.Json;
using Microsoft.Extensions.Logging;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk;

/// <summary>What an op gets while it runs: who it is, its run's parameters, a logger, progress, cancellation.</summary>
public sealed class OpContext
{
    private readonly RunEventStream _events;
    private readonly ProgressReporter _progress;
    private readonly IReadOnlyDictionary<string, byte[]> _inputs;
    private int _calls;

    internal OpContext(
        RunEventStream events,
        string jobName,
        string? releaseId,
        string opName,
        int attempt,
        JobParameters parameters,
        IReadOnlyDictionary<string, byte[]> inputs,
        ProgressReporter progress,
        CancellationToken cancellationToken)
    {
        _events = events;
        JobName = jobName;
        ReleaseId = releaseId;
        OpName = opName;
        Attempt = attempt;
        Parameters = parameters;
        _inputs = inputs;
        _progress = progress;
        CancellationToken = cancellationToken;
        Logger = new OpLogger(events, opName, () => attempt);
    }

    /// <summary>The run's id, unique per run.</summary>
    public string RunId => _events.RunId;

    /// <summary>The job being run.</summary>
    public string JobName { get; }

    /// <summary>The release (<c>sha256:…</c>) this code was deployed as; null when run by hand.</summary>
    public string? ReleaseId { get; }

    /// <summary>This op's name.</summary>
    public string OpName { get; }

    /// <summary>1 for the first attempt, 2 for the first retry, and so on.</summary>
    public int Attempt { get; }

    /// <summary>The run's parameters, validated and with defaults filled in.</summary>
    public JobParameters Parameters { get; }

    /// <summary>Logs become <c>log</c> events; named values in the message template become structured properties.</summary>
    public ILogger Logger { get; }

    /// <summary>Canceled when the run is canceled. Pass it on to every I/O call; an op that throws
    /// <see cref="OperationCanceledException"/> for it ends canceled, not failed.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>
    /// The W3C traceparent of this attempt's span, or null when nothing traces. The hook for tasks on worker pools: a task
    /// sent from this op carries it, so the task's spans join the caller's trace (docs/traces.md).
    /// </summary>
    internal string? TraceParent { get; init; }

    /// <summary>Where this op's task calls go: in-process in a local run, the pool's queue in a deployed one.</summary>
    internal ITaskCaller Tasks { get; init; } = UnavailableTaskCaller.Instance;

    /// <summary>
    /// Reports how far along the op is. Cheap to call on every item: at most one progress event per
    /// 100 ms leaves the process, and the last value is always delivered.
    /// </summary>
    /// <param name="fraction">From 0 to 1; values outside are clamped.</param>
    /// <param name="message">What the op is doing now, for people.</param>
    public void ReportProgress(double fraction, string? message = null) => _progress.Report(fraction, message);

    /// <summary>Records a fact about what the op produced (row counts, paths, sizes), as a <c>metadata</c> event.</summary>
    public void RecordMetadata(string key, object? value) =>
        _events.Emit(new RunEvent
        {
            Run = _events.RunId,
            Type = EventTypes.Metadata,
            Op = OpName,
            Metadata = new Dictionary<string, JsonElement> { [key] = SdkJson.ToElement(value) },
        });

    /// <summary>The output of an op this op depends on, read back from its JSON form.</summary>
    /// <exception cref="InvalidOperationException">This op does not depend on <paramref name="op"/>.</exception>
    public T Input<T>(string op)
    {
        if (!_inputs.TryGetValue(op, out var json))
        {
            throw new InvalidOperationException(
                $"Op '{OpName}' reads the output of '{op}' but does not depend on it; add it to dependsOn. It depends on: {string.Join(", ", _inputs.Keys)}.");
        }

        return JsonSerializer.Deserialize<T>(json, SdkJson.Options)!;
    }

    /// <summary>
    /// Calls a task on a pool and waits for its result: the input goes to the pool as JSON, the task runs there (with
    /// its own retry policy), and its logs, output and progress show in this run, attributed to this op and the task.
    /// <code>
    /// var mesh = await context.CallAsync&lt;Scan, Mesh&gt;("meshing", "reconstruct", scan);
    /// </code>
    /// In a local run the task runs in this process (docs/tasks.md, "Local runs").
    /// </summary>
    /// <param name="pool">The location serving the task (<c>meshing</c>), optionally pinned to one of its releases by a
    /// prefix of its digest (<c>meshing@1a2b3c4d</c>); unpinned calls go to the pool's live release.</param>
    /// <param name="task">The task's name, as the pool declares it.</param>
    /// <param name="input">The task's input; serialized as JSON, as op outputs are.</param>
    /// <param name="cancellationToken">Stops waiting and cancels the task sooner than the run's <see cref="CancellationToken"/>, which always does.</param>
    /// <returns>The task's output, read back from its JSON.</returns>
    /// <exception cref="ArgumentException"><paramref name="pool"/> is not a pool reference or <paramref name="task"/> not a task name.</exception>
    /// <exception cref="TaskCallException">No pool serves the task (the call is refused, nothing queued), it failed on its
    /// last attempt, or its queue gave up on it after its delivery limit; the message says which and what to do.</exception>
    /// <exception cref="OperationCanceledException">The run (or <paramref name="cancellationToken"/>) was canceled.</exception>
    public async Task<TOutput> CallAsync<TInput, TOutput>(string pool, string task, TInput input, CancellationToken cancellationToken = default)
    {
        var reference = PoolReference.Parse(pool);
        Names.Validate(task, "task");
        var json = JsonSerializer.SerializeToUtf8Bytes(input, SdkJson.Options);
        // The n-th call of this attempt: a retried op that makes the same calls in the same order gets the same ids,
        // so the task's side effects keyed on them happen once.
        var taskId = $"{RunId}:{OpName}:{Interlocked.Increment(ref _calls)}";
        // The run's cancellation always reaches the task; a token of the caller's can cancel it sooner.
        using var linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(CancellationToken, cancellationToken) : null;
        var output = await Tasks.CallAsync(new TaskCall(reference, task, taskId, json, _events, OpName, Attempt, TraceParent), linked?.Token ?? CancellationToken).ConfigureAwait(false);
        try
        {
            return JsonSerializer.Deserialize<TOutput>(output, SdkJson.Options)!;
        }
        catch (JsonException exception)
        {
            throw new JsonException(
                $"task '{task}' of pool '{reference.Name}' returned output that does not match {Protocol.DefinitionsJson.TypeName(typeof(TOutput))}, the type this op reads it as "
                + $"({exception.Message}). Read it as the task's output type (`skiff jobs {reference.Name}` lists it).", exception);
        }
    }
}
