using Microsoft.Extensions.Logging;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk;

/// <summary>
/// What a task gets while it runs: which call it serves, a logger, progress and cancellation. Its logs, console output
/// and progress become events of the calling run, attributed to the calling op and to this task.
/// </summary>
public sealed class TaskContext
{
    private readonly ProgressReporter _progress;

    internal TaskContext(RunEventStream events, TaskOrigin origin, string callerOp, int callerAttempt, string? releaseId, ProgressReporter progress, CancellationToken cancellationToken)
    {
        RunId = events.RunId;
        Pool = origin.Pool;
        TaskName = origin.Task;
        TaskId = origin.TaskId;
        Attempt = origin.Attempt ?? 1;
        ReleaseId = releaseId;
        _progress = progress;
        CancellationToken = cancellationToken;
        Logger = new OpLogger(events, callerOp, () => callerAttempt, origin);
    }

    /// <summary>The pool (location) serving this task.</summary>
    public string Pool { get; }

    /// <summary>This task's name.</summary>
    public string TaskName { get; }

    /// <summary>
    /// The call's id, the same on every attempt and redelivery of it, and on the same call of a retried op (the n-th
    /// call of an op attempt): use it as the key of the task's side effects, so a task that runs twice does them once.
    /// </summary>
    public string TaskId { get; }

    /// <summary>1 for the first attempt, 2 for the first retry, and so on.</summary>
    public int Attempt { get; }

    /// <summary>The calling run's id.</summary>
    public string RunId { get; }

    /// <summary>The release (<c>sha256:…</c>) serving the task; null when run by hand.</summary>
    public string? ReleaseId { get; }

    /// <summary>Logs become <c>log</c> events of the calling run, with the task's name, id and attempt.</summary>
    public ILogger Logger { get; }

    /// <summary>
    /// Canceled when the calling run is canceled (or the calling op stops waiting). Pass it on to every I/O call; a task
    /// that throws <see cref="OperationCanceledException"/> for it ends canceled and is not retried.
    /// </summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>
    /// Reports how far along the task is, as a <c>progress</c> event of the calling run. Cheap to call on every item: at
    /// most one event per 100 ms is sent, and the last value always is.
    /// </summary>
    /// <param name="fraction">From 0 to 1; values outside are clamped.</param>
    /// <param name="message">What the task is doing now, for people.</param>
    public void ReportProgress(double fraction, string? message = null) => _progress.Report(fraction, message);
}
