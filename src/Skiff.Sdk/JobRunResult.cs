using System.Text.Json;
using Skiff.Sdk.Events;

namespace Skiff.Sdk;

/// <summary>
/// What a job run by <see cref="SkiffApp.RunJobAsync"/> did: how it ended, what it logged, and every event
/// it emitted (the format of docs/events.md, the same the platform records).
/// </summary>
public sealed class JobRunResult
{
    internal JobRunResult(string outcome, IReadOnlyList<RunEvent> events)
    {
        Outcome = outcome;
        Logs = [.. events.Where(e => e.Type == EventTypes.Log).Select(e => e.Message ?? "")];
        Error = events.LastOrDefault(e => EventTypes.EndsRun(e.Type))?.Reason;
        Events = [.. events.Select(e => JsonSerializer.SerializeToElement(e, SdkJson.Options))];
    }

    /// <summary><c>succeeded</c>, <c>failed</c> or <c>canceled</c>, as <c>skiff runs</c> shows it.</summary>
    public string Outcome { get; }

    /// <summary>Whether every op succeeded.</summary>
    public bool Succeeded => Outcome == "succeeded";

    /// <summary>The messages the job's ops logged through <see cref="OpContext.Logger"/>, placeholders filled in, in order.</summary>
    public IReadOnlyList<string> Logs { get; }

    /// <summary>Why the run did not succeed (for example <c>op 'load' failed: …</c>); null when it succeeded.</summary>
    public string? Error { get; }

    /// <summary>Every event of the run, one JSON object each, in order (docs/events.md).</summary>
    public IReadOnlyList<JsonElement> Events { get; }

    /// <inheritdoc/>
    public override string ToString() =>
        Error is null ? $"{Outcome}; logs:\n{string.Join('\n', Logs)}" : $"{Outcome}: {Error}; logs:\n{string.Join('\n', Logs)}";
}
