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
}
