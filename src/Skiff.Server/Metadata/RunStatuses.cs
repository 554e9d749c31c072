namespace Skiff.Server.Metadata;

/// <summary>Where a run is; the values of <see cref="RunRecord.Status"/>.</summary>
internal static class RunStatuses
{
    /// <summary>Waiting for a slot under its location's or its job's concurrency limit (docs/run-queue.md); not started.</summary>
    public const string Queued = "queued";

    public const string Running = "running";

    public const string Succeeded = "succeeded";

    public const string Failed = "failed";

    public const string Canceled = "canceled";

    public static bool IsKnown(string status) => status is Queued or Running or Succeeded or Failed or Canceled;

    /// <summary>Whether a run in this status has ended.</summary>
    public static bool IsFinal(string status) => status is Succeeded or Failed or Canceled;
}
