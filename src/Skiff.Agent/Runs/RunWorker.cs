using System.Text.Json.Nodes;
using Skiff.Agent.CodeServers;
using Skiff.Core.Limits;
using Skiff.Core;

namespace Skiff.Agent.Runs;

/// <summary>
/// One run in a process of its own, started from the release the run was launched on: the release's
/// program started as a code server that serves this one run and is then shut down. A run that takes
/// its process down, or runs out of memory, ends failed with the reason; nothing else notices.
/// A run of a location whose runs are shared has <see cref="Host"/> instead: it runs in its release's
/// <see cref="SharedRunHost"/>, which outlives it.
/// </summary>
internal sealed class RunWorker
{
    public required string RunId { get; init; }

    public required string Location { get; init; }

    public required Digest Release { get; init; }

    /// <summary>What of the cache the run's release uses: it must stay on disk until the run ends.</summary>
    public required Skiff.Core.Materialization.MaterializeOutcome Materialized { get; init; }

    public required CodeServerProcess Process { get; init; }

    public required RunHandle Inner { get; init; }

    public required RunHandle Outer { get; init; }

    public MemoryLimit? MemoryLimit { get; init; }

    /// <summary>The shared run host the run executes in (<see cref="Process"/> is its process); null for a process of its own.</summary>
    public SharedRunHost? Host { get; init; }

    /// <summary>
    /// Copies the worker's events to the caller's handle; labels a failure caused by the memory limit as out
    /// of memory; then shuts the worker down. Completes when the run has ended and the process is gone.
    /// </summary>
    public async Task<JsonObject> RelayAsync(TimeSpan stopGrace)
    {
        var outOfMemory = false;
        await foreach (var runEvent in Inner.Events.ReadAllAsync().ConfigureAwait(false))
        {
            // Only a location with a limit can go over it: without one, "Out of memory" on stderr is the runtime failing
            // to start a thread (a fork bomb at the location's process limit, found by the attack pass) or the host's
            // own shortage, and the run's reason says that as it is. Only a failure is read further than its type; every
            // other event is passed on as it came.
            if (MemoryLimit is null || runEvent.Type is not ("op_failed" or "run_failed"))
            {
                Outer.Deliver(runEvent);
                continue;
            }

            var failure = runEvent.ToJsonObject();
            outOfMemory |= IsOutOfMemory(failure);
            if (runEvent.Type == "run_failed" && outOfMemory)
            {
                failure["out_of_memory"] = true;
                failure["reason"] = Host is null
                    ? $"out of memory: the run went over its location's limit of {MemoryLimit} and its process was stopped. {(string?)failure["reason"]}"
                    // The limit bounds the host, all its runs together: which of them used the memory is not known.
                    : $"out of memory: the location's shared run host went over its limit of {MemoryLimit}, which all its runs share. {(string?)failure["reason"]}";
                Outer.Deliver(failure);
            }
            else
            {
                Outer.Deliver(runEvent);
            }
        }

        // The end as passed on, with what was added to it (out_of_memory).
        var terminal = await Outer.Completion.ConfigureAwait(false);
        if (Host is not null)
        {
            // The host serves the location's other runs; the agent retires it when its release is no longer live.
            return terminal;
        }

        using var grace = new CancellationTokenSource(stopGrace);
        try
        {
            await Process.ShutdownAsync(TimeSpan.Zero, grace.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // It would not exit; disposing kills it.
        }

        await Process.DisposeAsync().ConfigureAwait(false);
        return terminal;
    }

    private static bool IsOutOfMemory(JsonObject failure) =>
        (string?)failure["error"]?["type"] == "System.OutOfMemoryException"
            // The process itself died for want of memory: the runtime says so on stderr, which the reason quotes.
            || ((string?)failure["reason"])?.Contains("OutOfMemory", StringComparison.Ordinal) == true
            || ((string?)failure["reason"])?.Contains("Out of memory", StringComparison.Ordinal) == true;
}
