using System.Net;
using System.Net.Http.Headers;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Agent.Blobs;

/// <summary>Reads blobs from a Skiff server (<c>GET /api/v1/blobs/{digest}</c>). The agent's cache verifies what arrives.</summary>
internal sealed class HttpBlobSource(HttpClient http, Uri server, string token) : IBlobSource
{
    public async Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server, $"api/v1/blobs/{digest}"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            response.Dispose();
            throw new BlobNotFoundException(digest, server.ToString());
        }

        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
    }
}
