using System.Diagnostics;
using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Sdk.Tracing;
using Skiff.Server.Agents;
using Skiff.Server.Api;
using Skiff.Server.Deployments;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Server.Metrics;

namespace Skiff.Server.Runs;

/// <summary>
/// Starts a run of a location's live release on an agent that hosts it (<c>POST /api/v1/runs</c>), or queues it when
/// its location or job is at its concurrency limit (docs/run-queue.md).
/// </summary>
internal sealed class RunStarter(IMetadataStore store, AgentHub agents, RunQueue queue, ServerOptions options, TimeProvider time)
{
    public ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>Where each run's wait between being asked for and starting is measured.</summary>
    public ServerMetrics Metrics { get; init; } = ServerMetrics.Discard;

    /// <summary>
    /// Returns the run's id, the release it runs and its status: <see cref="RunStatuses.Running"/> once the agent has
    /// accepted it, or <see cref="RunStatuses.Queued"/> when it waits for a slot (it is recorded, and starts later).
    /// </summary>
    /// <exception cref="NotFoundException">No such location, nothing live there, or no such job.</exception>
    /// <exception cref="BadRequestException">The parameters do not fit the job, or the job's name cannot be one.</exception>
    /// <exception cref="InvalidLocationNameException">The location's name cannot be one.</exception>
    /// <exception cref="AgentUnavailableException">No agent hosts the location, or it refused the run.</exception>
    public async Task<(string Run, string Release, string Status)> StartAsync(string location, string job, JsonObject parameters, CancellationToken cancellationToken)
    {
        var asked = time.GetTimestamp();
        LocationNames.Validate(location);
        JobNames.Validate(job);
        var live = await ControlEndpoints.LiveLocationAsync(store, location, cancellationToken).ConfigureAwait(false);
        // Refused here, from the definitions the live release reported, before a run id or an agent is involved: the
        // agent's own refusal names the worker process it started, a run id nothing else ever shows.
        if (live.DefinitionsJson is not null && Json.JobNames(live.DefinitionsJson) is { Count: > 0 } jobs && !jobs.Contains(job, StringComparer.Ordinal))
        {
            throw new NotFoundException($"location '{location}' has no job '{job}'; its live release defines: {string.Join(", ", jobs.Order(StringComparer.Ordinal))}.");
        }

        var runId = $"r-{time.GetUtcNow().ToUnixTimeMilliseconds():x11}{Guid.NewGuid().ToString("N")[..8]}";
        // The root of a run's trace when nothing called with one (a schedule), else a child of the caller's request.
        using var span = ServerTraces.Source.StartActivity("run.start");
        span?.SetTag(Traces.Run, runId);
        span?.SetTag(Traces.Location, location);
        span?.SetTag(Traces.Job, job);
        span?.SetTag(Traces.Release, live.LiveRelease!.Value.ToString());
        var agent = await agents.AgentForRunAsync(live, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        var jobLimit = Json.JobMaxConcurrent(live.DefinitionsJson, job);
        if (live.MaxConcurrent is not null || jobLimit is not null)
        {
            return await QueueAsync(live, job, parameters, runId, jobLimit, agent, cancellationToken).ConfigureAwait(false);
        }

        var reply = await agents.StartRunAsync(
            agent,
            new StartRunRequest(runId, location, job, live.LiveRelease!.Value.ToString(), parameters, live.MemoryLimit, Traces.Traceparent(span ?? Activity.Current)) { Environment = await agents.EnvironmentOfAsync(location, cancellationToken).ConfigureAwait(false), Runs = live.Runs },
            time.GetUtcNow(),
            options.ActivationTimeout,
            cancellationToken).ConfigureAwait(false);
        if (reply is AgentErrorReply error)
        {
            span.Failed(error.Message);
            throw error.Code switch
            {
                "unknown_job" => new NotFoundException(error.Message),
                "bad_parameters" => new BadRequestException(error.Message),
                _ => new AgentUnavailableException(error.Message),
            };
        }

        // A run under no limit waits only for its agent to take it; a queued run's wait is measured as it leaves the
        // queue (RunQueue.SendAsync).
        Metrics.RunAccepted(time.GetElapsedTime(asked));
        return (runId, live.LiveRelease!.Value.ToString(), RunStatuses.Running);
    }

    /// <summary>
    /// A run under a limit: recorded first, queued, and started in the same transaction if a slot is free, so the
    /// decision holds across servers; then sent to the agent, with any queued run the same decision started.
    /// </summary>
    private async Task<(string Run, string Release, string Status)> QueueAsync(LocationRecord live, string job, JsonObject parameters, string runId, int? jobLimit, AgentLink agent, CancellationToken cancellationToken)
    {
        var requested = new RunRecord(runId, live.Name, live.LiveRelease!.Value, job, parameters.ToJsonString(), RunStatuses.Queued, time.GetUtcNow(), null, null, null)
        {
            JobMaxConcurrent = jobLimit,
        };
        var started = await store.QueueRunAsync(requested, agent.Name, cancellationToken).ConfigureAwait(false);
        if (started.All(r => r.Id != runId))
        {
            Log.RunQueued(Logger, runId, live.Name, job);
        }

        // Sent even when this request is abandoned: the runs are recorded as running and must reach their agent.
        var failures = await queue.SendAsync(started, live, agent, CancellationToken.None).ConfigureAwait(false);
        if (failures.TryGetValue(runId, out var failure))
        {
            // Recorded as failed, with why; the caller hears why as if nothing had been recorded.
            throw failure;
        }

        return (runId, live.LiveRelease!.Value.ToString(), started.Any(r => r.Id == runId) ? RunStatuses.Running : RunStatuses.Queued);
    }
}
