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

    public Task<JsonNode> GetAsync(string path, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, path, null, cancellationToken);

    public Task<JsonNode> PostAsync(string path, JsonObject? body, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, path, body, cancellationToken);

    /// <summary>
    /// Uploads one blob from the local store, streamed; retried on transient failures (the server verifies every
    /// byte). <paramref name="sent"/> hears of every chunk read for sending (and of a negative count when an
    /// attempt is retried), so a caller can show progress.
    /// </summary>
    public async Task UploadAsync(IBlobStore local, Digest digest, Action<long>? sent, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var counted = 0L;
            void Count(long bytes)
            {
                counted += bytes;
                sent?.Invoke(bytes);
            }

            try
            {
                var stream = new CountingStream(await local.OpenReadAsync(digest, cancellationToken).ConfigureAwait(false), Count);
                await using (stream.ConfigureAwait(false))
                {
                    using var content = new StreamContent(stream);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    content.Headers.ContentLength = stream.Length;
                    using var response = await _http.PutAsync($"api/v1/blobs/{digest}", content, cancellationToken).ConfigureAwait(false);
                    if ((int)response.StatusCode >= 500 && attempt < 3)
                    {
                        sent?.Invoke(-counted);
                        continue;
                    }

                    await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
                    return;
                }
            }
            catch (HttpRequestException) when (attempt < 3)
            {
                sent?.Invoke(-counted);
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), cancellationToken).ConfigureAwait(false);
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

    public void Dispose() => _http.Dispose();

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
