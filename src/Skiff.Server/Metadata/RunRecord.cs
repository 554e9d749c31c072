using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>One execution of a job, pinned to the release that was live on its location when it started.</summary>
/// <param name="Id">Chosen by the caller; unique.</param>
/// <param name="Location">The location the run was started on.</param>
/// <param name="Release">The release it runs on, live there when it started; it keeps running on it.</param>
/// <param name="Job">The name of the job, as the release defines it.</param>
/// <param name="ParametersJson">The parameters the run was started with, as a JSON object.</param>
/// <param name="Status">One of <see cref="RunStatuses"/>.</param>
/// <param name="StartedAt">When the run was started; for a run still <see cref="RunStatuses.Queued"/>, when it was requested, and
/// for one canceled while queued, when it left the queue (its <see cref="FinishedAt"/>).</param>
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

    /// <summary>
    /// When the run was requested, for a run that went through the run queue (its location or job has a concurrency
    /// limit); null for a run started without one. Such a run started at once has <see cref="StartedAt"/> equal to it.
    /// </summary>
    public DateTimeOffset? QueuedAt { get; init; }

    /// <summary>The job's own limit on its running runs at the location, as its release declared it when the run was requested; null for none.</summary>
    public int? JobMaxConcurrent { get; init; }

    /// <summary>How long the run waited in the queue before it started (or was canceled); null while it waits and for a run that never queued.</summary>
    public TimeSpan? QueueWait => QueuedAt is { } queued && Status != RunStatuses.Queued ? StartedAt - queued : null;
}

/// <summary>A run still going as far as the store knows, and the last of its events it holds.</summary>
/// <param name="Id">The run.</param>
/// <param name="Agent">The agent running it; null only for runs recorded before agents were.</param>
/// <param name="LastSeq">The highest event sequence number stored for it; 0 when none is.</param>
internal sealed record RunningRun(string Id, string? Agent, long LastSeq);

/// <summary>How many of a location's runs that have not ended one agent is running (<see cref="IMetadataStore.CountActiveRunsAsync"/>).</summary>
/// <param name="Agent">The agent; null for the runs still queued, which have none yet.</param>
/// <param name="Runs">How many; never 0.</param>
internal sealed record ActiveRuns(string? Agent, int Runs);
