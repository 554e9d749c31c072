using Skiff.Core.Limits;

namespace Skiff.Agent.Locations;

/// <summary>Per-location settings that apply to every process of the location.</summary>
internal sealed record LocationSettings
{
    public static LocationSettings Default { get; } = new();

    /// <summary>The memory each code server and run worker may use; none by default.</summary>
    public MemoryLimit? MemoryLimit { get; init; }

    /// <summary>Overrides the agent's activation timeout for this location.</summary>
    public TimeSpan? ActivationTimeout { get; init; }

    /// <summary>
    /// The location's environment variables (docs/env.md), secrets included: every code server and run worker gets them.
    /// Held in memory only; never logged or written to a file.
    /// </summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Where the location's runs execute; isolated by default. Not part of <see cref="Equals(LocationSettings?)"/>: it
    /// changes where the next run starts, never the live code server, so a change activates nothing again.
    /// </summary>
    public Runs.RunHosting Runs { get; init; }

    // By value, environment included: activating the live release again with other settings must start it again.
    public bool Equals(LocationSettings? other) =>
        other is not null
        && MemoryLimit == other.MemoryLimit
        && ActivationTimeout == other.ActivationTimeout
        && Environment.Count == other.Environment.Count
        && Environment.All(v => other.Environment.TryGetValue(v.Key, out var value) && value == v.Value);

    public override int GetHashCode() => HashCode.Combine(MemoryLimit, ActivationTimeout, Environment.Count);

    // A record prints its members: the environment's values may be secrets.
    public override string ToString() => $"LocationSettings {{ MemoryLimit = {MemoryLimit}, ActivationTimeout = {ActivationTimeout}, Runs = {Runs}, Environment = {Environment.Count} variable(s) }}";
}
