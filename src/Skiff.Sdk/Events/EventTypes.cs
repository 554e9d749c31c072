namespace Skiff.Sdk.Events;

/// <summary>The values of <see cref="RunEvent.Type"/>.</summary>
internal static class EventTypes
{
    public const string RunStarted = "run_started";
    public const string RunSucceeded = "run_succeeded";
    public const string RunFailed = "run_failed";
    public const string RunCanceled = "run_canceled";
    public const string OpStarted = "op_started";
    public const string OpSucceeded = "op_succeeded";
    public const string OpFailed = "op_failed";
    public const string OpCanceled = "op_canceled";
    public const string OpSkipped = "op_skipped";
    public const string OpRetrying = "op_retrying";
    public const string Log = "log";
    public const string Progress = "progress";
    public const string Metadata = "metadata";
    public const string Output = "output";

    // A task an op called (docs/tasks.md): one started event per attempt, then how the attempt ended.
    public const string TaskStarted = "task_started";
    public const string TaskSucceeded = "task_succeeded";
    public const string TaskFailed = "task_failed";
    public const string TaskRetrying = "task_retrying";
    public const string TaskCanceled = "task_canceled";

    public static bool EndsRun(string type) => type is RunSucceeded or RunFailed or RunCanceled;
}
