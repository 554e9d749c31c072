namespace Skiff.Agent.Locations;

/// <summary>The state of a live version's code server.</summary>
internal enum VersionHealth
{
    /// <summary>Up and answering.</summary>
    Healthy,

    /// <summary>Crashed; waiting out its backoff before the next start.</summary>
    Restarting,

    /// <summary>Crashed too often; left down until a new version is activated.</summary>
    Unhealthy,
}
