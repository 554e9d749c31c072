using Skiff.Core;

namespace Skiff.Agent.Locations;

/// <summary>Something the agent tells its control plane about a location, as it happens.</summary>
internal sealed record AgentReport(DateTimeOffset At, string Location, Digest Release, AgentReportKind Kind, string Message);

internal enum AgentReportKind
{
    Activated,
    ActivationFailed,
    Crashed,
    Restarted,
    Unhealthy,
    OutOfMemory,
    Stopped,

    /// <summary>A pool's release was replaced and drains (docs/tasks.md, "Pins"): it finishes its tasks and serves calls pinned to it, then <see cref="Stopped"/>.</summary>
    Draining,

    /// <summary>A folder of the release had changed on disk since it was unpacked; it was unpacked again before a process started from it.</summary>
    Repaired,

    /// <summary>A location's shared run host died (docs/agent.md, "Shared run host"): its runs ended failed; the next run starts a new one.</summary>
    RunHostDied,
}
