namespace Skiff.Server.Agents;

/// <summary>What a rebalance or drain did with one location: the agents it was on and is on now, and why not all moved.</summary>
internal sealed record LocationMove(string Location, IReadOnlyList<string> From, IReadOnlyList<string> To, string? Error);

/// <summary>A location that cannot be placed as asked (a drain that would strand one).</summary>
internal sealed class PlacementException(string message) : Skiff.Core.SkiffException(message);

/// <summary>An agent name the store has never seen.</summary>
internal sealed class AgentNotFoundException(string message) : Skiff.Core.SkiffException(message);

/// <summary>A deploy's replicas or constraints that cannot be understood.</summary>
internal sealed class InvalidPlacementException(string message) : Skiff.Core.SkiffException(message);
