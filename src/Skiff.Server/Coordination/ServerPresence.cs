using System.Security.Cryptography;
using Skiff.Core;
using Skiff.Server.Agents;
using Skiff.Server.Deployments;
using Skiff.Server.Metadata;

namespace Skiff.Server.Coordination;

/// <summary>
/// This server's part in a group of servers sharing one store: it heartbeats, and on every heartbeat it
/// cleans up after servers that stopped heartbeating (their pending deployments are failed, the runs of
/// agents connected nowhere are watched). A server alone on its store (SQLite) needs none of this: it fails
/// whatever its previous life left pending as it starts, as before.
/// </summary>
internal sealed class ServerPresence(IMetadataStore store, IServerBus bus, Deployer deployer, AgentHub agents, TimeSpan gracePeriod, bool shared, TimeProvider time) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _beating = Task.CompletedTask;

    /// <summary>A new id for each process: a restarted server is a new one, and its predecessor's deployments are failed by the grace rule.</summary>
    public static string NewServerId() =>
        $"{Environment.MachineName}-{Environment.ProcessId}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";

    /// <summary>How often a shared server heartbeats and sweeps: several times per grace period, so one slow beat is not taken for death.</summary>
    public TimeSpan Interval => gracePeriod / 4;

    /// <summary>Where a beat that failed unexpectedly is logged.</summary>
    public ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!shared)
        {
            // Alone on the store: every pending deployment is this server's previous life's.
            await store.FailPendingDeploymentsAsync("the server stopped before this deployment finished; deploy again", cancellationToken).ConfigureAwait(false);
            return;
        }

        await store.HeartbeatServerAsync(bus.ServerId, cancellationToken).ConfigureAwait(false);
        await bus.StartAsync(cancellationToken).ConfigureAwait(false);

        // Deployments of servers that died long enough ago are failed now; those of one killed a moment ago
        // (perhaps this server's previous life) once the grace period has passed, by the loop.
        await deployer.FailOrphanedDeploymentsAsync(gracePeriod, cancellationToken).ConfigureAwait(false);
        _beating = BeatAsync(_stopping.Token);
    }

    private async Task BeatAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await Task.Delay(Interval, time, cancellationToken).ConfigureAwait(false);
                await store.HeartbeatServerAsync(bus.ServerId, cancellationToken).ConfigureAwait(false);
                await deployer.FailOrphanedDeploymentsAsync(gracePeriod, cancellationToken).ConfigureAwait(false);
                await agents.WatchUnclaimedRunsAsync().ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is OperationCanceledException or ObjectDisposedException)
            {
                // This server is stopping: the web host (whose token the run watch uses) may stop before this loop.
                return;
            }
            catch (SkiffException)
            {
                // The store is away (PostgreSQL restarting): beat again at the next interval. Others may take this
                // server for dead meanwhile; its deployments then end as they recorded.
            }
            catch (Exception exception)
            {
                // Anything else is a bug; the beat must go on all the same, or others take this server for dead.
                Log.HeartbeatFailed(Logger, exception, bus.ServerId);
            }
        }
    }

    /// <summary>
    /// Stops heartbeating and fails the deployments this server still drives (the web host has stopped, so
    /// nothing will finish them), so the others need not wait out the grace period for them.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _beating.ConfigureAwait(false);
        if (shared)
        {
            try
            {
                foreach (var deployment in (await store.ListPendingDeploymentsAsync(CancellationToken.None).ConfigureAwait(false)).Where(d => d.Server == bus.ServerId))
                {
                    try
                    {
                        await store.CompleteDeploymentAsync(deployment.Id, DeploymentOutcomes.Failed, $"server '{bus.ServerId}' stopped before this deployment finished; deploy again", null, null, deployment.TimingsMs, CancellationToken.None).ConfigureAwait(false);
                        await bus.PublishAsync(Deployer.Topic, deployment.Location).ConfigureAwait(false);
                    }
                    catch (MetadataConflictException)
                    {
                        // It finished after all.
                    }
                }
            }
            catch (SkiffException)
            {
                // The store is away: the others fail them once this server's heartbeat is old enough.
            }
        }

        await bus.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }
}
