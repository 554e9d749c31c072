namespace Skiff.Server.Metadata;

/// <summary>One thing an agent reported about a location: kept as the location's health history.</summary>
/// <param name="Location">The location.</param>
/// <param name="Agent">The agent that reported it.</param>
/// <param name="Release">The release (a digest, as the agent sent it) the report is about.</param>
/// <param name="Kind">What happened, as the agent names it: <c>Crashed</c>, <c>Restarted</c>, <c>Unhealthy</c>, <c>OutOfMemory</c>,
/// <c>Activated</c>, <c>ActivationFailed</c>, <c>Stopped</c>, <c>Repaired</c>, or a kind a newer agent adds.</param>
/// <param name="Message">The agent's words for people.</param>
/// <param name="At">When it happened, by the agent's clock.</param>
internal sealed record LocationHealthRecord(string Location, string Agent, string Release, string Kind, string Message, DateTimeOffset At);
