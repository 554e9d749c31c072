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
        if (!response.IsSuccessStatusCode)
        {
            var status = response.StatusCode;
            response.Dispose();
            throw status == HttpStatusCode.NotFound
                ? new BlobNotFoundException(digest, server.ToString())
                : new BlobFetchException(digest, server, status);
        }

        return await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>The server answered a blob request with an error other than "not found".</summary>
internal sealed class BlobFetchException(Digest digest, Uri server, HttpStatusCode status)
    : SkiffException($"fetching blob {digest} from {server} failed with HTTP {(int)status}; the activation was not made, try the deploy again.");
