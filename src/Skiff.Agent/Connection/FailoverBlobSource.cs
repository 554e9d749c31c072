using Skiff.Agent.Blobs;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Agent.Connection;

/// <summary>
/// Fetches blobs from the server the agent is connected to, and from the others in turn when that one cannot be
/// reached: a blob fetch must not fail because the server it first went to has died. What arrives is verified by
/// the agent's cache whatever server it came from.
/// </summary>
internal sealed class FailoverBlobSource(HttpClient http, ServerList servers, string token) : IBlobSource
{
    public async Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken)
    {
        for (var tried = 1; ; tried++)
        {
            var server = servers.Current;
            try
            {
                return await new HttpBlobSource(http, server, token).OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException) when (tried < servers.All.Count)
            {
                servers.MoveOn(server);
            }
        }
    }
}
