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
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (SkiffException)
            {
                // The store is away (PostgreSQL restarting): beat again at the next interval. Others may take this
                // server for dead meanwhile; its deployments then end as they recorded.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _beating.ConfigureAwait(false);
        await bus.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }
}
