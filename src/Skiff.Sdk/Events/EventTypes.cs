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

    public static bool EndsRun(string type) => type is RunSucceeded or RunFailed or RunCanceled;
}
