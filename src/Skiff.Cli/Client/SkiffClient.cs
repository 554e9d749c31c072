using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Cli.Client;

/// <summary>The server's JSON API as the CLI uses it (docs/api.md).</summary>
internal sealed class SkiffClient(ClientConfig config) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        BaseAddress = config.Server,
        Timeout = Timeout.InfiniteTimeSpan,
        DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", config.Token) },
    };

    public Uri Server => config.Server;

    /// <summary>How long an upload to the server's blob store (S3) may move no bytes before the attempt is given up. Default 30 seconds.</summary>
    public TimeSpan BlobStoreStallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public Task<JsonNode> GetAsync(string path, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, path, null, cancellationToken);

    public Task<JsonNode> PostAsync(string path, JsonObject? body, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, path, body, cancellationToken);

    // The blob store is someone else's server: no token of ours goes there (none is set on this client), and
    // an address that does not answer fails fast instead of waiting for the operating system's minutes.
    private readonly HttpClient _blobStore = new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectTimeout = TimeSpan.FromSeconds(10),
        AllowAutoRedirect = false,
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>
    /// Uploads one blob from the local store, streamed; retried on transient failures (the server verifies every
    /// byte). With <paramref name="direct"/> (the server keeps blobs in S3) the bytes go to its pre-signed URL
    /// and the server is then asked to commit them, which it does only after checking them; else they go to the
    /// server. <paramref name="sent"/> hears of every chunk read for sending (and of a negative count when an
    /// attempt is retried), so a caller can show progress.
    /// </summary>
    /// <exception cref="ClientException">The server or the blob store could not be reached, or refused the blob; it was not stored.</exception>
    public async Task UploadAsync(IBlobStore local, Digest digest, DirectUpload? direct, Action<long>? sent, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var counted = 0L;
            // A blob store that stops taking bytes (or never answers) ends the attempt instead of hanging it.
            using var stalled = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            void Count(long bytes)
            {
                counted += bytes;
                sent?.Invoke(bytes);
                if (direct is not null)
                {
                    stalled.CancelAfter(BlobStoreStallTimeout);
                }
            }

            var atBlobStore = false;
            try
            {
                var stream = new CountingStream(await local.OpenReadAsync(digest, cancellationToken).ConfigureAwait(false), Count);
                await using (stream.ConfigureAwait(false))
                {
                    using var content = new StreamContent(stream);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    content.Headers.ContentLength = stream.Length;
                    atBlobStore = direct is not null;
                    if (direct is not null)
                    {
                        stalled.CancelAfter(BlobStoreStallTimeout);
                    }

                    using var response = direct is null
                        ? await _http.PutAsync($"api/v1/blobs/{digest}", content, cancellationToken).ConfigureAwait(false)
                        : await _blobStore.PutAsync(direct.Url, content, stalled.Token).ConfigureAwait(false);
                    if ((int)response.StatusCode >= 500 && attempt < 3)
                    {
                        sent?.Invoke(-counted);
                        continue;
                    }

                    if (direct is null)
                    {
                        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
                        return;
                    }

                    await EnsureStoredAsync(response, direct, digest, cancellationToken).ConfigureAwait(false);
                    atBlobStore = false;
                }

                using var commit = await _http.PostAsync(
                    $"api/v1/blobs/{digest}/commit",
                    new StringContent(new JsonObject { ["upload"] = direct.Id }.ToJsonString(), Encoding.UTF8, "application/json"),
                    cancellationToken).ConfigureAwait(false);
                if ((int)commit.StatusCode >= 500 && attempt < 3)
                {
                    // The server could not reach S3 to check the bytes: they are sent again and checked again.
                    sent?.Invoke(-counted);
                    continue;
                }

                await EnsureSuccessAsync(commit, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (HttpRequestException) when (attempt < 3)
            {
                sent?.Invoke(-counted);
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (atBlobStore && stalled.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                sent?.Invoke(-counted);
                if (attempt == 3)
                {
                    throw new ClientException(
                        $"the server's blob store at {direct!.Endpoint} stopped answering while blob {digest} was uploaded (nothing moved for {BlobStoreStallTimeout.TotalSeconds:0.#} s, three times). Nothing was recorded as uploaded; deploy again once it answers.");
                }
            }
            catch (HttpRequestException exception) when (atBlobStore)
            {
                throw new ClientException(
                    $"could not upload blob {digest} to the server's blob store at {direct!.Endpoint} ({exception.Message}); this machine must reach it as the server does. Nothing was recorded as uploaded; deploy again once it is reachable.");
            }
            catch (HttpRequestException exception)
            {
                throw Unreachable(exception);
            }
        }
    }

    /// <summary>A run's events as they happen (newline-delimited JSON), until it ends.</summary>
    public async IAsyncEnumerable<JsonObject> FollowAsync(string runId, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"api/v1/runs/{Uri.EscapeDataString(runId)}/events?follow={(follow ? "true" : "false")}");
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException exception)
        {
            throw Unreachable(exception);
        }

        using (response)
        {
            await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), Encoding.UTF8);
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (line.Length > 0 && JsonNode.Parse(line) is JsonObject runEvent)
                {
                    yield return runEvent;
                }
            }
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _blobStore.Dispose();
    }

    private async Task<JsonNode> SendAsync(HttpMethod method, string path, JsonObject? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        try
        {
            using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
            return JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)) ?? new JsonObject();
        }
        catch (HttpRequestException exception)
        {
            throw Unreachable(exception);
        }
    }

    private ClientException Unreachable(HttpRequestException exception) =>
        new($"could not reach the Skiff server at {config.Server} ({exception.Message}); is it running? Start one with `skiff up`.");

    /// <summary>Turns the blob store's refusal of a pre-signed PUT (an expired URL, a full bucket) into one line that names it.</summary>
    private static async Task EnsureStoredAsync(HttpResponseMessage response, DirectUpload direct, Digest digest, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        // S3 answers <Error><Code>…</Code><Message>…</Message></Error>.
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        string? Element(string name) =>
            text.IndexOf($"<{name}>", StringComparison.Ordinal) is var start and >= 0 && text.IndexOf($"</{name}>", start, StringComparison.Ordinal) is var end and >= 0
                ? text[(start + name.Length + 2)..end]
                : null;
        var reason = Element("Code") is { } code ? $"{code}: {Element("Message")}" : $"HTTP {(int)response.StatusCode}";
        throw new ClientException(
            $"the server's blob store at {direct.Endpoint} refused blob {digest} ({reason}); nothing was recorded as uploaded. Deploy again (each deploy gets new upload URLs).");
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        string? message = null;
        try
        {
            message = (string?)JsonNode.Parse(text)?["error"];
        }
        catch (System.Text.Json.JsonException)
        {
        }

        throw new ClientException(
            response.StatusCode == HttpStatusCode.Unauthorized
                ? $"the server refused the token (401): {message ?? "unauthorized"}"
                : $"{message ?? text} (HTTP {(int)response.StatusCode})",
            usage: response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound);
    }
}
