using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>One execution of a job, pinned to the release that was live on its location when it started.</summary>
/// <param name="Id">Chosen by the caller; unique.</param>
/// <param name="Location">The location the run was started on.</param>
/// <param name="Release">The release it runs on, live there when it started; it keeps running on it.</param>
/// <param name="Job">The name of the job, as the release defines it.</param>
/// <param name="ParametersJson">The parameters the run was started with, as a JSON object.</param>
/// <param name="Status">One of <see cref="RunStatuses"/>.</param>
/// <param name="StartedAt">When the run was started.</param>
/// <param name="FinishedAt">When the run ended; null while it runs.</param>
/// <param name="Reason">Why the run failed or was canceled, for people.</param>
/// <param name="Agent">The agent running it, which streams its events and is asked for them again after a reconnect.</param>
internal sealed record RunRecord(
    string Id,
    string Location,
    Digest Release,
    string Job,
    string ParametersJson,
    string Status,
    DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt,
    string? Reason,
    string? Agent)
{
    /// <summary>What started the run when it was not a call of the API: <c>schedule:JOB</c> for a run its job's schedule started.</summary>
    public string? StartedBy { get; init; }
}

/// <summary>A run still going as far as the store knows, and the last of its events it holds.</summary>
/// <param name="Id">The run.</param>
/// <param name="Agent">The agent running it; null only for runs recorded before agents were.</param>
/// <param name="LastSeq">The highest event sequence number stored for it; 0 when none is.</param>
internal sealed record RunningRun(string Id, string? Agent, long LastSeq);
