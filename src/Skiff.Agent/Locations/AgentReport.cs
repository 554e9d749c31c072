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
}
