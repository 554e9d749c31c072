using Skiff.Core.Blobs;
using Skiff.Server.Coordination;
using Skiff.Server.Metadata;

namespace Skiff.Server.Hosting;

/// <summary>A started server: where it listens, its token, and how to stop it.</summary>
internal sealed class RunningServer(WebApplication app, Uri url, string token, IMetadataStore store, IBlobStore blobs, IAsyncDisposable taskQueue, ServerPresence presence, IDisposable folderLock) : IAsyncDisposable
{
    public Uri Url { get; } = url;

    public string Token { get; } = token;

    public IMetadataStore Store { get; } = store;

    public IBlobStore Blobs { get; } = blobs;

    /// <summary>Every endpoint the server maps, with its metadata (roles: Authorization.cs).</summary>
    public IReadOnlyList<Endpoint> Endpoints => [.. ((IEndpointRouteBuilder)app).DataSources.SelectMany(d => d.Endpoints)];

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
        await taskQueue.DisposeAsync().ConfigureAwait(false);
        await presence.DisposeAsync().ConfigureAwait(false);
        await Store.DisposeAsync().ConfigureAwait(false);
        (Blobs as IDisposable)?.Dispose();
        folderLock.Dispose();
    }
}
