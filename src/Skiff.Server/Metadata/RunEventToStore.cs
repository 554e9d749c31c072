namespace Skiff.Server.Metadata;

/// <summary>
/// One event an agent sent, to be stored by <see cref="IMetadataStore.AppendRunEventsAsync"/>: its run, its
/// sequence number, its JSON, and, when it is the run's end, how the run ended (<see cref="EndStatus"/>, one of
/// the final <see cref="RunStatuses"/>, and the reason the event gave).
/// </summary>
internal sealed record RunEventToStore(string RunId, long Seq, string Json, string? EndStatus = null, string? EndReason = null)
{
    /// <summary>Checks every event before a store opens its transaction, so a bad one changes nothing.</summary>
    public static void CheckAll(IReadOnlyList<RunEventToStore> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        for (var i = 0; i < events.Count; i++)
        {
            var runEvent = events[i];
            if (runEvent is null || string.IsNullOrEmpty(runEvent.RunId) || runEvent.Json is null)
            {
                throw new ArgumentException($"run event #{i + 1} of {events.Count} names no run or has no JSON; every event needs both.", nameof(events));
            }

            if (runEvent.EndStatus is { } status && !RunStatuses.IsFinal(status))
            {
                throw new ArgumentException($"run event #{i + 1} of {events.Count} (run '{runEvent.RunId}', seq {runEvent.Seq}) ends its run as '{status}'; a run ends as '{RunStatuses.Succeeded}', '{RunStatuses.Failed}' or '{RunStatuses.Canceled}'.", nameof(events));
            }
        }
    }
}

/// <summary>What <see cref="IMetadataStore.AppendRunEventsAsync"/> did with one event.</summary>
internal enum RunEventOutcome
{
    /// <summary>Stored now.</summary>
    Stored,

    /// <summary>Not stored: its (run, seq) was stored already (a resend), or its run had ended. An end still ends its run if the run was running.</summary>
    Ignored,

    /// <summary>Not stored: no run has its id. The other events in the call are unaffected.</summary>
    UnknownRun,
}
