namespace Skiff.Server.Hosting;

/// <summary>A host lifetime that leaves starting and stopping to whoever owns the host (<see cref="SkiffServerHost"/>'s caller).</summary>
internal sealed class OwnerLifetime : Microsoft.Extensions.Hosting.IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
