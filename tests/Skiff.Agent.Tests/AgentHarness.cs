using System.Text.Json.Nodes;
using Skiff.Agent.CodeServers;
using Skiff.Agent.Locations;

namespace Skiff.Agent.Tests;

/// <summary>An agent with its own cache folder, fed from the shared store of built releases.</summary>
internal sealed class AgentHarness : IAsyncDisposable
{
    // Deadlines against a hang, not measures: these tests start code servers beside the CLI's tests and their builds on
    // two CPUs, where a process start has taken tens of seconds.
    public static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    private readonly string _cache = Directory.CreateTempSubdirectory("skiff-agent-").FullName;
    private readonly TimeProvider _time;

    public AgentHarness(Releases releases, Func<AgentOptions, AgentOptions>? configure = null, TimeProvider? time = null)
    {
        var options = new AgentOptions
        {
            CacheDirectory = _cache,
            RestartBackoff = TimeSpan.FromMilliseconds(50),
            ActivationTimeout = Deadline,
            // The test releases declare tasks, so each is a pool whose replaced release drains; here it stops as soon as it
            // runs no task, as these tests expect (the drain itself is tested in DrainTests, and with a server in TaskCallTests).
            DrainIdle = TimeSpan.Zero,
        };
        Options = configure?.Invoke(options) ?? options;
        _time = time ?? TimeProvider.System;
        Agent = new AgentHost(Options, releases.Store, _time);
    }

    public AgentHost Agent { get; private set; }

    public AgentOptions Options { get; }

    public string CacheDirectory => _cache;

    /// <summary>Replaces the agent with a new one on the same cache folder, as after a restart of the host.</summary>
    public async Task RestartAsync(Releases releases)
    {
        await Agent.DisposeAsync();
        Agent = new AgentHost(Options, releases.Store, _time);
    }

    public static CancellationToken Timeout() => new CancellationTokenSource(Deadline).Token;

    public async Task<ActivationResult> ActivateAsync(string location, Skiff.Core.Digest release, LocationSettings? settings = null)
    {
        var result = await Agent.ActivateAsync(location, release, settings, Timeout());
        return result;
    }

    /// <summary>Waits for a report of the given kind about the location, skipping others.</summary>
    public async Task<AgentReport> WaitForReportAsync(string location, AgentReportKind kind)
    {
        await foreach (var report in Agent.Reports.ReadAllAsync(Timeout()))
        {
            if (report.Location == location && report.Kind == kind)
            {
                return report;
            }
        }

        throw new InvalidOperationException($"the agent stopped before reporting {kind} for {location}");
    }

    public static async Task<List<JsonObject>> CollectAsync(RunHandle run)
    {
        var events = new List<JsonObject>();
        await foreach (var e in run.Events.ReadAllAsync(Timeout()))
        {
            events.Add(e.ToJsonObject());
        }

        return events;
    }

    public async ValueTask DisposeAsync()
    {
        await Agent.DisposeAsync();
        Directory.Delete(_cache, recursive: true);
    }
}
