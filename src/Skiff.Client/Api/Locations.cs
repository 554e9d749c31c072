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
/// <param name="LastReport">The last report of an agent about it to this server since it started, or null.</param>
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
    DateTimeOffset UpdatedAt,
    AgentNote? LastReport = null)
{
    /// <summary>The most runs it runs at once, others waiting queued (docs/run-queue.md); null for no limit.</summary>
    public int? MaxConcurrent { get; init; }

    /// <summary>How many tasks the live release serves (docs/tasks.md); a location with any is a pool for them.</summary>
    public int Tasks { get; init; }

    /// <summary>The environment variant of the live release (docs/build.md, "Variants"); null when nothing is live.</summary>
    public string? Variant { get; init; }

    /// <summary>Whether the live release carries experimental packages (`skiff deploy --exp`, docs/build.md).</summary>
    public bool Experimental { get; init; }

    /// <summary>Whether the location refuses releases with experimental packages (`skiff locations set L --no-exp`).</summary>
    public bool RefusesExperimental { get; init; }

    /// <summary>
    /// For a pool deployed with <c>--replicas MIN..MAX</c>, its fewest replicas (<see cref="Replicas"/> is then its most, and
    /// <see cref="Agents"/> says how many it is on now); null for a fixed number (docs/tasks.md, "Scaling a pool").
    /// </summary>
    public int? MinReplicas { get; init; }

    /// <summary>Where its runs execute: <c>isolated</c> (a process each) or <c>shared</c> (a shared run host per release, docs/agent.md).</summary>
    public string Runs { get; init; } = "isolated";
}

/// <summary>
/// The body of <c>PATCH /api/v1/locations/{name}</c>: the settings to change, each kept across deploys. A setting left
/// out is left as it is; <c>null</c> clears one.
/// </summary>
/// <param name="MaxConcurrent">The most runs the location runs at once, 1 or more; null for no limit.</param>
/// <param name="Experimental">Whether the location takes releases with experimental packages (false: it refuses them).</param>
/// <param name="Runs">Where the location's runs execute from the next run on: <c>isolated</c> or <c>shared</c>.</param>
internal sealed record LocationSettingsRequest(int? MaxConcurrent, bool? Experimental = null, string? Runs = null);

/// <summary>The answer of <c>PATCH /api/v1/locations/{name}</c>: the location's settings after the change.</summary>
/// <param name="Location">Its name.</param>
/// <param name="MaxConcurrent">The most runs it runs at once; null for no limit.</param>
/// <param name="Changed">What was changed, as <c>name=value</c> (what the audit log records).</param>
internal sealed record LocationSettings(string Location, int? MaxConcurrent, string Changed)
{
    /// <summary>Whether the location refuses releases with experimental packages.</summary>
    public bool RefusesExperimental { get; init; }

    /// <summary>
    /// The experimental packages of the live release, or null: a location set to refuse them keeps such a release live,
    /// and re-activates it for environment changes, until the next deploy replaces it.
    /// </summary>
    public string? LiveExperimental { get; init; }

    /// <summary>Where the location's runs execute: <c>isolated</c> or <c>shared</c>.</summary>
    public string Runs { get; init; } = "isolated";
}

/// <summary>
/// The last thing an agent reported of a location to this server, kept beside the health it maps to: a crash and
/// restart, a failed health check, a run over its memory limit, a repaired code folder.
/// </summary>
/// <param name="Kind">What happened: <c>activated</c>, <c>activation_failed</c>, <c>crashed</c>, <c>restarted</c>, <c>unhealthy</c>, <c>out_of_memory</c>, <c>stopped</c>, <c>repaired</c>, <c>run_host_died</c> or <c>draining</c>.</param>
/// <param name="Message">The agent's account of it.</param>
/// <param name="At">When the agent saw it.</param>
/// <param name="Release">
/// The release it is about: not always the live one (a pool's replaced release reports <c>draining</c>, then <c>stopped</c>).
/// Null from a server older than this field.
/// </param>
internal sealed record AgentNote(string Kind, string Message, DateTimeOffset At, string? Release = null);

/// <summary>One entry of <c>GET /api/v1/locations/{name}/health</c>: a report an agent sent about the location, kept in the metadata store.</summary>
/// <param name="Kind">What happened, as in <see cref="AgentNote.Kind"/> (a kind a newer agent adds comes as it is named).</param>
/// <param name="Message">The agent's account of it.</param>
/// <param name="Release">The release it is about.</param>
/// <param name="Agent">The agent that reported it.</param>
/// <param name="At">When the agent saw it.</param>
internal sealed record HealthReport(string Kind, string Message, string Release, string Agent, DateTimeOffset At);

/// <summary>The answer of <c>GET /api/v1/locations/{name}/jobs</c>.</summary>
/// <param name="Location">Its name.</param>
/// <param name="Release">The live release.</param>
/// <param name="Jobs">The job definitions as docs/code-server-protocol.md describes them.</param>
internal sealed record LocationJobs(string Location, string? Release, JsonArray Jobs)
{
    /// <summary>
    /// The tasks the live release serves, as docs/code-server-protocol.md describes them (name, description, input and
    /// output types and JSON schemas, retry policy); empty when the location is not a pool.
    /// </summary>
    public JsonArray Tasks { get; init; } = [];
}
