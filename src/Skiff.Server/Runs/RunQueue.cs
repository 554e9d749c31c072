using Microsoft.Extensions.Hosting;
using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Core.Messaging;
using Skiff.Server.Agents;
using Skiff.Server.Api;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Server.Metrics;

namespace Skiff.Server.Runs;

/// <summary>
/// Starts queued runs when a slot frees (docs/run-queue.md). Which runs start is decided in the metadata store, under
/// the location's lock, so servers sharing it never start more than a limit allows; this sends the runs the store
/// started to their agent. It looks when told a run ended on this server (<see cref="Nudge"/>) and every
/// <see cref="SweepInterval"/> anyway: the run that ended may have been on another server, and a server that queued a
/// run may have died since, so no queued run depends on the server that queued it.
/// </summary>
internal sealed class RunQueue(IMetadataStore store, AgentHub agents, RunService runs, ServerOptions options, TimeProvider time) : BackgroundService
{
    /// <summary>How often every server looks for queued runs that can start, whatever it was told.</summary>
    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(1);

    private TaskCompletionSource _nudged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>Where a queued run's wait is measured as it starts.</summary>
    public ServerMetrics Metrics { get; init; } = ServerMetrics.Discard;

    /// <summary>Says a slot may have freed (a run ended): look now rather than at the next sweep.</summary>
    public void Nudge() => _nudged.TrySetResult();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            // Taken before the pass, so a nudge during it brings another pass at once.
            Interlocked.Exchange(ref _nudged, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            try
            {
                foreach (var location in await store.ListLocationsWithQueuedRunsAsync(stoppingToken).ConfigureAwait(false))
                {
                    await StartQueuedAsync(location, stoppingToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                // A store out of reach must not stop the queue: the next pass tries again.
                Log.RunQueuePassFailed(Logger, exception, SweepInterval);
            }

            try
            {
                await Volatile.Read(ref _nudged).Task.WaitAsync(SweepInterval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // The sweep.
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Starts what fits of a location's queued runs on one of its agents; nothing when no agent is connected (the next pass tries again).</summary>
    public async Task StartQueuedAsync(string location, CancellationToken cancellationToken)
    {
        var live = await store.GetLocationAsync(location, cancellationToken).ConfigureAwait(false);
        if (live?.LiveRelease is null)
        {
            return;
        }

        AgentLink agent;
        try
        {
            agent = await agents.AgentForRunAsync(live, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is AgentUnavailableException || (exception is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return;
        }

        var started = await store.StartQueuedRunsAsync(location, agent.Name, cancellationToken).ConfigureAwait(false);
        await SendAsync(started, live, agent, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends runs the store has just started to their agent. A run the agent refuses, or cannot be sent, is failed
    /// with why, which frees its slot. Returns why each run that failed so did, by run id.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, Exception>> SendAsync(IReadOnlyList<RunRecord> started, LocationRecord location, AgentLink agent, CancellationToken cancellationToken)
    {
        var failures = new Dictionary<string, Exception>(StringComparer.Ordinal);
        foreach (var run in started)
        {
            // The one place a queued run becomes a started one on this side of the store: its queue wait is known here.
            Log.RunDequeued(Logger, run.Id, run.Location, run.Job, run.Agent, run.QueueWait);
            Exception? failure;
            try
            {
                var reply = await agents.RequestAsync(
                    agent,
                    new StartRunRequest(run.Id, run.Location, run.Job, run.Release.ToString(), JsonNode.Parse(run.ParametersJson) as JsonObject ?? [], location.MemoryLimit) { Environment = await agents.EnvironmentOfAsync(run.Location, cancellationToken).ConfigureAwait(false), Runs = location.Runs },
                    options.ActivationTimeout,
                    cancellationToken).ConfigureAwait(false);
                failure = reply is AgentErrorReply error
                    ? error.Code switch
                    {
                        "unknown_job" => new NotFoundException(error.Message),
                        "bad_parameters" => new BadRequestException(error.Message),
                        _ => new AgentUnavailableException(error.Message),
                    }
                    : null;
            }
            catch (Exception exception) when (exception is SkiffException || (exception is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                failure = exception;
            }

            if (failure is null)
            {
                Log.RunStarted(Logger, run.Id, run.Location, run.Job, run.Agent);
                // Not through RunService.Starting (the store recorded it started): counted here instead.
                Metrics.RunStarted();
                Metrics.RunAccepted(run.QueueWait ?? TimeSpan.Zero);
                continue;
            }

            failures[run.Id] = failure;
            await runs.FailLostRunAsync(new RunningRun(run.Id, run.Agent, 0), $"the run could not be started on agent '{agent.Name}': {failure.Message}", CancellationToken.None).ConfigureAwait(false);
            Nudge();
        }

        return failures;
    }
}
