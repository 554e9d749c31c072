using System.Text.Json;

namespace Skiff.Sdk.Events;

/// <summary>
/// One thing that happened in a run. Written as one JSON object per line, the same on every channel
/// (code-server protocol, local runner with --json, the agent's logs); see docs/events.md.
/// Fields that do not apply to a type are left out.
/// </summary>
internal sealed record RunEvent
{
    public const int FormatVersion = 1;

    public int V { get; init; } = FormatVersion;

    public long Seq { get; init; }

    public DateTimeOffset Ts { get; init; }

    public required string Run { get; init; }

    public required string Type { get; init; }

    public string? Job { get; init; }

    /// <summary>
    /// On <c>run_started</c>: the release the run runs. On a deployed task's events: the release of the pool that served it.
    /// </summary>
    public string? Release { get; init; }

    public string? Op { get; init; }

    public int? Attempt { get; init; }

    public string? Level { get; init; }

    public string? Message { get; init; }

    /// <summary>For <c>output</c>: <c>stdout</c> or <c>stderr</c>.</summary>
    public string? Stream { get; init; }

    /// <summary>For <c>output</c>: one line as the job wrote it, without its line break.</summary>
    public string? Text { get; init; }

    public IReadOnlyDictionary<string, JsonElement>? Properties { get; init; }

    public double? Fraction { get; init; }

    public ErrorInfo? Error { get; init; }

    public IReadOnlyDictionary<string, JsonElement>? Metadata { get; init; }

    public long? DelayMs { get; init; }

    public long? DurationMs { get; init; }

    public string? Reason { get; init; }

    public IReadOnlyDictionary<string, JsonElement>? Parameters { get; init; }

    /// <summary>On a task's events (<c>task_*</c>, and its logs, output and progress): the pool serving it.</summary>
    public string? Pool { get; init; }

    /// <summary>On a task's events: the task's name.</summary>
    public string? Task { get; init; }

    /// <summary>On a task's events: the call's id, its side-effect key.</summary>
    public string? TaskId { get; init; }

    /// <summary>On a task's events: the task's attempt (<see cref="Attempt"/> stays the calling op's).</summary>
    public int? TaskAttempt { get; init; }

    /// <summary>On <c>task_started</c> of a pinned call: the release prefix the op pinned the pool to.</summary>
    public string? Pin { get; init; }

    /// <summary>On a deployed task's events: the agent whose worker ran it (absent in a local run).</summary>
    public string? Worker { get; init; }

    /// <summary>
    /// On a deployed task's events: which delivery of the call from the pool's queue gave them (1, 2, … when a worker died
    /// and the task was delivered again; absent in a local run).
    /// </summary>
    public int? Delivery { get; init; }

    /// <summary>
    /// On the first <c>task_started</c> of a deployed task's delivery after the first: why the previous delivery ended
    /// (the error it failed with, or that its worker went away without a result).
    /// </summary>
    public string? RedeliveryReason { get; init; }
}

/// <summary>An exception as events carry it: enough to act on without the process that threw it.</summary>
internal sealed record ErrorInfo(string Type, string Message, string? Stack = null)
{
    public static ErrorInfo From(Exception exception) =>
        new(exception.GetType().FullName ?? exception.GetType().Name, exception.Message, exception.ToString());
}
