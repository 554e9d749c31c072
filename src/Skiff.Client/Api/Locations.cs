using System.Text.Json.Nodes;

namespace Skiff.Client.Api;

/// <summary>One entry of <c>GET /api/v1/locations</c>.</summary>
/// <param name="Location">Its name.</param>
/// <param name="Release">The live release, or null before the first one went live.</param>
/// <param name="Deployment">The live deployment.</param>
/// <param name="Jobs">How many jobs the live release defines.</param>
/// <param name="MemoryLimit">Its memory limit, or null for none.</param>
/// <param name="Replicas">On how many agents it runs.</param>
/// <param name="On">The labels its agents must have, or null for any agent.</param>
/// <param name="Agents">The agents it is placed on, by name.</param>
/// <param name="Health"><c>healthy</c>, <c>restarting</c>, <c>unhealthy</c> or <c>none</c>.</param>
/// <param name="UpdatedAt">When it last changed.</param>
internal sealed record LocationSummary(
    string Location,
    string? Release,
    string? Deployment,
    int Jobs,
    string? MemoryLimit,
    int Replicas,
    string? On,
    IReadOnlyList<string> Agents,
    string Health,
    DateTimeOffset UpdatedAt);

/// <summary>The answer of <c>GET /api/v1/locations/{name}/jobs</c>.</summary>
/// <param name="Location">Its name.</param>
/// <param name="Release">The live release.</param>
/// <param name="Jobs">The job definitions as docs/code-server-protocol.md describes them.</param>
internal sealed record LocationJobs(string Location, string? Release, JsonArray Jobs);
