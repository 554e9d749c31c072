using System.Diagnostics;
using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Sdk.Tracing;
using Skiff.Server.Agents;
using Skiff.Server.Api;
using Skiff.Server.Deployments;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;

namespace Skiff.Server.Runs;

/// <summary>Starts a run of a location's live release on an agent that hosts it (<c>POST /api/v1/runs</c>).</summary>
internal sealed class RunStarter(IMetadataStore store, AgentHub agents, ServerOptions options, TimeProvider time)
{
    /// <summary>Returns the run's id and the release it runs once the agent has accepted it.</summary>
    /// <exception cref="NotFoundException">No such location, nothing live there, or no such job.</exception>
    /// <exception cref="BadRequestException">The parameters do not fit the job, or the job's name cannot be one.</exception>
    /// <exception cref="InvalidLocationNameException">The location's name cannot be one.</exception>
    /// <exception cref="AgentUnavailableException">No agent hosts the location, or it refused the run.</exception>
    public async Task<(string Run, string Release)> StartAsync(string location, string job, JsonObject parameters, CancellationToken cancellationToken)
    {
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
        var reply = await agents.StartRunAsync(
            agent,
            new StartRunRequest(runId, location, job, live.LiveRelease!.Value.ToString(), parameters, live.MemoryLimit, Traces.Traceparent(span ?? Activity.Current)),
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

        return (runId, live.LiveRelease!.Value.ToString());
    }
}
