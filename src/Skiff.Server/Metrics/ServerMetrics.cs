using Prometheus;
using Skiff.Core.Messaging;
using Skiff.Server.Metadata;

namespace Skiff.Server.Metrics;

/// <summary>
/// One server's metrics (docs/metrics.md): the figures <c>GET /metrics</c> shows, in a registry of this server's own.
/// The parts of the server call it where things happen (a deploy ends, a batch of events commits); the few figures that
/// are states rather than events (agents connected, blob store size, events queued) are read when scraped.
/// </summary>
/// <remarks>
/// Not prometheus-net's static default registry: tests start several servers in one process, and each server's
/// /metrics must show only what that server did. Labels are bounded sets: deployment paths, outcomes, run statuses,
/// stage names, route templates, and locations and agents (as many as the platform has, chosen by its operators);
/// never run or deployment ids. Histograms carry no location, so their series do not multiply by the locations.
/// </remarks>
internal sealed class ServerMetrics
{
    /// <summary>The client's stages a deployment records (DeploymentRequest.TimingsMs) and the server's own; any other name a client sends is not a label.</summary>
    public static readonly IReadOnlyList<string> DeployStages = ["restore", "build", "pack", "upload", "activate", "total"];

    /// <summary>For parts made without a server (tests of one class): what they count goes nowhere anyone reads.</summary>
    public static readonly ServerMetrics Discard = new(includeProcess: false);

    private readonly Counter _deploys;
    private readonly Histogram _deployStages;
    private readonly Counter _activations;
    private readonly Histogram _activationDuration;
    private readonly Counter _runsStarted;
    private readonly Counter _runsFinished;
    private readonly Histogram _runDuration;
    private readonly Histogram _runQueueWait;
    private readonly Counter _runEventsStored;
    private readonly Histogram _runEventBatchSize;
    private readonly Histogram _runEventBatchDuration;
    private readonly Gauge _runEventsQueued;
    private readonly Gauge _agentsConnected;
    private readonly Gauge _agentCpus;
    private readonly Gauge _agentMemory;
    private readonly Gauge _agentDisk;
    private readonly Gauge _agentMemoryUsed;
    private readonly Gauge _agentDiskFree;
    private readonly Gauge _agentLoad1;
    private readonly Gauge _agentRuns;
    private readonly Gauge _agentLocations;

    /// <param name="includeProcess">
    /// Whether the registry also shows the process's own figures (CPU seconds, memory, open files, GC, threads:
    /// prometheus-net's <c>process_*</c> and <c>dotnet_*</c>). They are the process's, not the server's, so two servers
    /// in one process show the same ones; a real deployment runs one server per process, where they are what an
    /// operator looks at first.
    /// </param>
    public ServerMetrics(bool includeProcess = true)
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        if (includeProcess)
        {
            DotNetStats.Register(Registry);
        }

        Factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        var factory = Factory;
        _deploys = factory.CreateCounter(
            "skiff_deploys_total",
            "Deployments this server decided (took live or failed), by location, path (full, fast, unchanged, rollback) and outcome (live, failed).",
            ["location", "path", "outcome"]);
        _deployStages = factory.CreateHistogram(
            "skiff_deploy_stage_duration_seconds",
            "Time a deployment spent in each stage: the client's restore, build, pack and upload as it reported them, the server's activate, and total (client stages plus the server's time).",
            new HistogramConfiguration { LabelNames = ["path", "stage"], Buckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180] });
        _activations = factory.CreateCounter(
            "skiff_activations_total",
            "Releases this server asked an agent to make live on a location (for deploys, moves and agents that reconnect), by outcome (succeeded, failed).",
            ["outcome"]);
        _activationDuration = factory.CreateHistogram(
            "skiff_activation_duration_seconds",
            "Time from asking an agent to activate a release to its answer.",
            new HistogramConfiguration { Buckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180] });
        _runsStarted = factory.CreateCounter("skiff_runs_started_total", "Runs recorded as started by this server (the one holding the agent's connection).");
        _runsFinished = factory.CreateCounter(
            "skiff_runs_finished_total",
            "Runs whose end this server stored, by status (succeeded, failed, canceled); a run lost with its agent counts as failed.",
            ["status"]);
        _runDuration = factory.CreateHistogram(
            "skiff_run_duration_seconds",
            "How long runs ran, start to end, as their end event says, by status.",
            new HistogramConfiguration { LabelNames = ["status"], Buckets = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 12 * 3600] });
        _runQueueWait = factory.CreateHistogram(
            "skiff_run_queue_wait_seconds",
            "Time from a run being asked for (API or schedule) to its agent starting it.",
            new HistogramConfiguration { Buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600] });
        _runEventsStored = factory.CreateCounter("skiff_run_events_stored_total", "Run events this server stored (resent duplicates not counted).");
        _runEventBatchSize = factory.CreateHistogram(
            "skiff_run_event_batch_size",
            "Events per transaction when this server stores run events (group commit, docs/events.md).",
            new HistogramConfiguration { Buckets = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000] });
        _runEventBatchDuration = factory.CreateHistogram(
            "skiff_run_event_batch_duration_seconds",
            "Time to store one batch of run events, commit included.",
            new HistogramConfiguration { Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5] });
        _runEventsQueued = factory.CreateGauge("skiff_run_events_queued", "Run events received and waiting to be stored.");
        _agentsConnected = factory.CreateGauge("skiff_agents_connected", "Agents connected to this server.");
        _agentCpus = factory.CreateGauge("skiff_agent_cpus", "CPUs of each agent connected to this server, as it reported them.", ["agent"]);
        _agentMemory = factory.CreateGauge("skiff_agent_memory_bytes", "Memory of each agent connected to this server.", ["agent"]);
        _agentDisk = factory.CreateGauge("skiff_agent_disk_bytes", "Disk of each agent connected to this server (its cache's file system).", ["agent"]);
        _agentMemoryUsed = factory.CreateGauge("skiff_agent_memory_used_bytes", "Memory in use on each agent, as it last reported.", ["agent"]);
        _agentDiskFree = factory.CreateGauge("skiff_agent_disk_free_bytes", "Free disk on each agent, as it last reported.", ["agent"]);
        _agentLoad1 = factory.CreateGauge("skiff_agent_load1", "Each agent's one-minute load average, as it last reported.", ["agent"]);
        _agentRuns = factory.CreateGauge("skiff_agent_runs", "Runs going on each agent, as it last reported.", ["agent"]);
        _agentLocations = factory.CreateGauge("skiff_agent_locations", "Locations each agent runs, as it last reported.", ["agent"]);
    }

    /// <summary>What /metrics serves.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>Makes metrics in <see cref="Registry"/> (the HTTP middleware's, <see cref="BlobStoreSize"/>'s).</summary>
    public IMetricFactory Factory { get; }

    /// <summary>A deployment this server took live or failed; its stages as the record timed them.</summary>
    public void DeployEnded(DeploymentRecord deployment)
    {
        _deploys.WithLabels(deployment.Location, deployment.Path, deployment.Outcome).Inc();
        foreach (var stage in DeployStages)
        {
            if (deployment.TimingsMs.TryGetValue(stage, out var ms) && ms >= 0)
            {
                _deployStages.WithLabels(deployment.Path, stage).Observe(ms / 1000.0);
            }
        }
    }

    /// <summary>A deployment failed by this server because the server driving it stopped (no stages: they were not timed).</summary>
    public void DeployOrphaned(DeploymentRecord deployment) =>
        _deploys.WithLabels(deployment.Location, deployment.Path, DeploymentOutcomes.Failed).Inc();

    public void Activated(bool succeeded, TimeSpan elapsed)
    {
        _activations.WithLabels(succeeded ? "succeeded" : "failed").Inc();
        _activationDuration.Observe(elapsed.TotalSeconds);
    }

    /// <summary>A run accepted by its agent, <paramref name="queueWait"/> after it was asked for.</summary>
    public void RunAccepted(TimeSpan queueWait) => _runQueueWait.Observe(Math.Max(0, queueWait.TotalSeconds));

    /// <summary>A run recorded as started (by the server holding its agent's connection).</summary>
    public void RunStarted() => _runsStarted.Inc();

    /// <summary>A run's end stored; <paramref name="duration"/> null when its end event did not say.</summary>
    public void RunFinished(string status, TimeSpan? duration)
    {
        _runsFinished.WithLabels(status).Inc();
        if (duration is { } d)
        {
            _runDuration.WithLabels(status).Observe(Math.Max(0, d.TotalSeconds));
        }
    }

    /// <summary>A batch of run events committed: its size, how many were new, and how long it took.</summary>
    public void RunEventsStored(int batchSize, int stored, TimeSpan elapsed)
    {
        _runEventBatchSize.Observe(batchSize);
        _runEventsStored.Inc(stored);
        _runEventBatchDuration.Observe(elapsed.TotalSeconds);
    }

    /// <summary>Reads how many run events wait to be stored each time the metrics are scraped.</summary>
    public void WatchRunEventQueue(Func<int> queued)
    {
        // Nothing scrapes Discard: a callback there would only keep its writer alive for the process's life.
        if (this != Discard)
        {
            Registry.AddBeforeCollectCallback(() => _runEventsQueued.Set(queued()));
        }
    }

    public void AgentsConnected(int count) => _agentsConnected.Set(count);

    /// <summary>An agent's hello: what it has to give (a value it did not report is left out, not shown as 0).</summary>
    public void AgentCapacity(string agent, HostCapacity capacity)
    {
        _agentCpus.WithLabels(agent).Set(capacity.Cpus);
        SetOrRemove(_agentMemory, agent, capacity.MemoryBytes);
        SetOrRemove(_agentDisk, agent, capacity.DiskBytes);
    }

    /// <summary>An agent's load report.</summary>
    public void AgentLoad(string agent, AgentLoad load)
    {
        SetOrRemove(_agentMemoryUsed, agent, load.MemoryUsedBytes);
        SetOrRemove(_agentDiskFree, agent, load.DiskFreeBytes);
        SetOrRemove(_agentLoad1, agent, load.CpuLoad);
        _agentRuns.WithLabels(agent).Set(load.Runs);
        _agentLocations.WithLabels(agent).Set(load.Locations);
    }

    /// <summary>An agent disconnected from this server: its series go (the server it reconnects to shows them).</summary>
    public void AgentGone(string agent)
    {
        foreach (var gauge in new[] { _agentCpus, _agentMemory, _agentDisk, _agentMemoryUsed, _agentDiskFree, _agentLoad1, _agentRuns, _agentLocations })
        {
            gauge.RemoveLabelled(agent);
        }
    }

    private static void SetOrRemove(Gauge gauge, string agent, double? value)
    {
        if (value is { } v)
        {
            gauge.WithLabels(agent).Set(v);
        }
        else
        {
            gauge.RemoveLabelled(agent);
        }
    }
}
