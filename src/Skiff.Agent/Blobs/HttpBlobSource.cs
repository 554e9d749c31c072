using System.Net;
using System.Net.Http.Headers;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Agent.Blobs;

/// <summary>
/// Reads blobs from a Skiff server (<c>GET /api/v1/blobs/{digest}</c>). A server with blobs in S3 answers with a
/// redirect to a pre-signed URL, which is fetched without the server's token. The agent's cache verifies what arrives.
/// </summary>
/// <remarks>
/// Give it an <see cref="HttpClient"/> that does not follow redirects itself, so the token is never offered to
/// anyone but the server (.NET's own redirect handling drops it too, but this does not rely on that).
/// </remarks>
internal sealed class HttpBlobSource(HttpClient http, Uri server, string token) : IBlobSource
{
    /// <summary>How long the blob store (S3) may send nothing, for headers or for the next bytes, before the fetch fails. Default 30 seconds.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public async Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server, $"api/v1/blobs/{digest}"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.TemporaryRedirect or HttpStatusCode.Redirect or HttpStatusCode.RedirectKeepVerb
            && response.Headers.Location is { } location)
        {
            response.Dispose();
            return await OpenDirectAsync(digest, location.IsAbsoluteUri ? location : new Uri(server, location), cancellationToken).ConfigureAwait(false);
        }

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

    /// <summary>Fetches from where the server sent this agent (a pre-signed URL into its S3 bucket): no token, no further redirects.</summary>
    private async Task<Stream> OpenDirectAsync(Digest digest, Uri url, CancellationToken cancellationToken)
    {
        // The signature is in the query: messages name only the store's scheme, host and port.
        var endpoint = url.GetLeftPart(UriPartial.Authority);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        using var stalled = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stalled.CancelAfter(StallTimeout);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stalled.Token).ConfigureAwait(false);
        }
        catch (HttpRequestException exception)
        {
            throw new BlobStoreFetchException(digest, endpoint, exception.Message, exception);
        }
        catch (OperationCanceledException exception) when (!cancellationToken.IsCancellationRequested)
        {
            throw new BlobStoreFetchException(digest, endpoint, $"it sent nothing for {StallTimeout.TotalSeconds:0.#} s", exception);
        }

        if (!response.IsSuccessStatusCode)
        {
            var status = response.StatusCode;
            response.Dispose();
            throw new BlobStoreFetchException(digest, endpoint, $"HTTP {(int)status}", innerException: null);
        }

        return new StallGuardStream(
            await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false),
            StallTimeout,
            () => new BlobStoreFetchException(digest, endpoint, $"it stopped sending the blob for {StallTimeout.TotalSeconds:0.#} s", innerException: null));
    }
}

/// <summary>The server answered a blob request with an error other than "not found".</summary>
internal sealed class BlobFetchException(Digest digest, Uri server, HttpStatusCode status)
    : SkiffException($"fetching blob {digest} from {server} failed with HTTP {(int)status}; the activation was not made, try the deploy again.");

/// <summary>The server's blob store (S3), where the server sent the agent for a blob, could not be reached or refused.</summary>
internal sealed class BlobStoreFetchException(Digest digest, string endpoint, string reason, Exception? innerException)
    : SkiffException(
        $"fetching blob {digest} from the server's blob store at {endpoint} failed ({reason}); this agent must reach it as the server does. The activation was not made; try the deploy again once it is reachable.",
        innerException);
