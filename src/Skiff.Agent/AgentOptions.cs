using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Skiff.Agent;

/// <summary>How an agent keeps its cache and supervises processes. Defaults suit one shared host.</summary>
internal sealed class AgentOptions
{
    /// <summary>Where blobs and unpacked releases are kept between versions and restarts.</summary>
    public required string CacheDirectory { get; init; }

    /// <summary>How much disk unpacked releases may use before unused ones are evicted, least recently used first. Default 20 GiB.</summary>
    public long CacheBudgetBytes { get; init; } = 20L * 1024 * 1024 * 1024;

    /// <summary>How long a new version has to start and list its definitions. Default 60 s.</summary>
    public TimeSpan ActivationTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The wait before the first restart of a crashed code server; it doubles per crash. Default 250 ms.</summary>
    public TimeSpan RestartBackoff { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest wait between restarts. Default 30 s.</summary>
    public TimeSpan MaxRestartBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Crashes within <see cref="CrashWindow"/> after which a code server is marked unhealthy and left down. Default 5.</summary>
    public int MaxCrashes { get; init; } = 5;

    /// <summary>The window in which crashes count toward <see cref="MaxCrashes"/>. Default 5 minutes.</summary>
    public TimeSpan CrashWindow { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a replaced or shut-down code server gets to exit before it is killed. Default 10 s.</summary>
    public TimeSpan StopGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a pool's replaced release stays up with no task to run (docs/tasks.md, "Pins"): the tasks it runs finish
    /// on it, and calls pinned to it run on it, until none has run for this long.
    /// </summary>
    public TimeSpan DrainIdle { get; init; } = DefaultDrainIdle;

    public static readonly TimeSpan DefaultDrainIdle = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How many launch shapes (runtime settings, packages, process environment) keep a standby process started
    /// ahead of need, so the next version of a location, or a run, skips the process start. Each costs one idle
    /// process. Default 2; 0 turns standbys off.
    /// </summary>
    public int Standbys { get; init; } = 2;

    /// <summary>The standby program (Skiff.Standby.dll), shipped beside the agent.</summary>
    public string StandbyHost { get; init; } = Path.Combine(AppContext.BaseDirectory, "Skiff.Standby.dll");

    /// <summary>
    /// What this agent tells the server about itself (<c>skiff agent --label gpu=h200</c>): placement constraints
    /// (<c>skiff deploy --on gpu=h200</c>) match them.
    /// </summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>How often the agent reports its load to the server. Default 5 s.</summary>
    public TimeSpan LoadInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The <c>dotnet</c> host that runs releases.</summary>
    public string DotnetHost { get; init; } = "dotnet";

    /// <summary>
    /// Run every process of a location in a bubblewrap sandbox, as a user of its own (docs/agent.md, "Isolation").
    /// When set and the agent cannot sandbox, it refuses to start. Default false here; <c>skiff agent</c> and
    /// <c>skiff up</c> set it unless started with <c>--no-sandbox</c>. Standby processes are off while it is on.
    /// </summary>
    public bool Sandbox { get; init; }

    /// <summary>The CPUs all processes of one location may use together, by cgroup quota (1.5 = one and a half cores); null for no quota.</summary>
    public double? LocationCpus { get; init; }

    /// <summary>The processes and threads all processes of one location may have together, by cgroup: what stops a fork bomb. Default 1024.</summary>
    public int LocationProcesses { get; init; } = 1024;

    public void Validate()
    {
        if (LocationCpus is <= 0 || LocationProcesses < 16)
        {
            throw new ArgumentException("AgentOptions: LocationCpus must be positive, and LocationProcesses at least 16 (a .NET process alone has about 20 threads).");
        }

        if (string.IsNullOrWhiteSpace(CacheDirectory))
        {
            throw new ArgumentException("AgentOptions.CacheDirectory is required.");
        }

        if (ActivationTimeout <= TimeSpan.Zero || RestartBackoff < TimeSpan.Zero || MaxCrashes < 1 || CacheBudgetBytes <= 0 || Standbys < 0)
        {
            throw new ArgumentException("AgentOptions: ActivationTimeout and CacheBudgetBytes must be positive, RestartBackoff and Standbys not negative, MaxCrashes at least 1.");
        }
    }

    /// <summary>Where the agent's logs go (docs/logs.md); owned by the caller. Default: nowhere.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>
    /// Whether the agent logs each report (crash, restart, health change) it sends. Default true; off where a server in
    /// the same process writes the same lines as it stores the reports (<c>skiff up</c>), so each shows once.
    /// </summary>
    public bool LogReports { get; init; } = true;
}
