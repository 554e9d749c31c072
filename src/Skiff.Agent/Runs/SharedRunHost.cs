using Skiff.Agent.CodeServers;
using Skiff.Core;
using Skiff.Core.Materialization;

namespace Skiff.Agent.Runs;

/// <summary>
/// The process that executes every run of one release of a location whose runs are shared (<see cref="RunHosting.Shared"/>):
/// the release's program started as a code server, to which the agent sends each run, and which drives them concurrently
/// as async state machines (the SDK's code server runs any number at once). It stays up while its release is live, so a
/// run starts without a process start; a release that is no longer live keeps it until its last run ends.
/// </summary>
/// <remarks>
/// A process of its own beside the live code server, not the live code server itself: a run that takes its process down
/// (Environment.FailFast, a stack overflow, the memory limit) then ends only the runs, while the code server keeps serving
/// the location's definitions and its tasks as a pool, is not counted as a crash of the version and is not restarted with
/// backoff. The cost is one process per live release that has runs, which is what a single run cost before.
/// </remarks>
internal sealed class SharedRunHost(string location, MaterializeOutcome materialized, CodeServerProcess process)
{
    private readonly Lock _gate = new();
    private int _runs;
    private bool _retired;

    public string Location { get; } = location;

    public Digest Release => Materialized.Release.Release;

    /// <summary>What of the cache the host runs from: it stays on disk while the host is up.</summary>
    public MaterializeOutcome Materialized { get; } = materialized;

    public CodeServerProcess Process { get; } = process;

    /// <summary>How many runs the host has now, counting those being started.</summary>
    public int Runs
    {
        get
        {
            lock (_gate)
            {
                return _runs;
            }
        }
    }

    /// <summary>Counts a run about to start here; false once the host is retired or dead, when the run must go to a new one.</summary>
    public bool TryReserve()
    {
        lock (_gate)
        {
            if (_retired || Process.Exited.IsCompleted)
            {
                return false;
            }

            _runs++;
            return true;
        }
    }

    /// <summary>A reserved run ended, or did not start.</summary>
    public void Unreserve()
    {
        lock (_gate)
        {
            _runs--;
        }
    }

    /// <summary>Takes the host out of service if it has no runs: true when it is the caller's to shut down.</summary>
    public bool TryRetire()
    {
        lock (_gate)
        {
            if (_retired || _runs > 0)
            {
                return false;
            }

            _retired = true;
            return true;
        }
    }
}
