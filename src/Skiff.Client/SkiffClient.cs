using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Skiff.Client.Api;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Client;

/// <summary>
/// The server's HTTP API (docs/api.md), one typed method per call. Every call it makes is one of
/// <see cref="ApiRoutes"/>; a refusal becomes a <see cref="ClientException"/> carrying the server's message.
/// </summary>
/// <remarks>One instance keeps its connections warm; <c>skiff dev</c> holds one between saves.</remarks>
/// <param name="server">The server's URL (a trailing slash is added when missing).</param>
/// <param name="token">The bearer token sent with every call.</param>
internal sealed class SkiffClient(Uri server, string token) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        BaseAddress = server.AbsoluteUri.EndsWith('/') ? server : new Uri(server.AbsoluteUri + "/"),
        Timeout = Timeout.InfiniteTimeSpan,
        DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", token) },
    };

    public Uri Server => _http.BaseAddress!;

    /// <summary>How long an upload to the server's blob store (S3) may move no bytes before the attempt is given up. Default 30 seconds.</summary>
    public TimeSpan BlobStoreStallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Which of <paramref name="digests"/> the server lacks, and, from a server with blobs in S3, where to upload each.</summary>
    public Task<MissingBlobs> FindMissingBlobsAsync(IEnumerable<Digest> digests, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.MissingBlobs.Path(), new MissingBlobsRequest([.. digests.Select(d => d.ToString())]), ApiJson.Default.MissingBlobsRequest, ApiJson.Default.MissingBlobs, cancellationToken);

    /// <summary>Registers a deployment of a stored release and waits for its outcome (the answer comes once it is live or failed).</summary>
    public Task<Deployment> DeployAsync(DeploymentRequest request, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.Deploy.Path(), request, ApiJson.Default.DeploymentRequest, ApiJson.Default.Deployment, cancellationToken);

    public Task<Deployment> GetDeploymentAsync(string id, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.Deployment.Path(id), ApiJson.Default.Deployment, cancellationToken);

    /// <summary>Puts back the release of <paramref name="deployment"/>, by default the one live before the current one, and waits for the outcome.</summary>
    public Task<Deployment> RollbackAsync(string location, string? deployment, string? who, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.Rollback.Path(location), new RollbackRequest(deployment, who), ApiJson.Default.RollbackRequest, ApiJson.Default.Deployment, cancellationToken);

    public Task<IReadOnlyList<LocationSummary>> ListLocationsAsync(CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.Locations.Path(), ApiJson.Default.IReadOnlyListLocationSummary, cancellationToken);

    /// <summary>Changes a location's settings: each field of <paramref name="settings"/> one (null clears it), the others left as they are.</summary>
    public Task<LocationSettings> SetLocationAsync(string location, JsonObject settings, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.SetLocation.Path(location), settings, ApiJson.Default.JsonObject, ApiJson.Default.LocationSettings, cancellationToken, HttpMethod.Patch);

    public Task<LocationJobs> GetJobsAsync(string location, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.Jobs.Path(location), ApiJson.Default.LocationJobs, cancellationToken);

    /// <summary>A location's deployments, newest first, at most <paramref name="limit"/> (1–1000; the server refuses others).</summary>
    public Task<IReadOnlyList<Deployment>> ListDeploymentsAsync(string location, int limit, CancellationToken cancellationToken) =>
        SendAsync($"{ApiRoutes.History.Path(location)}?limit={limit}", ApiJson.Default.IReadOnlyListDeployment, cancellationToken);

    /// <summary>A location's health history, newest first: what agents reported about it.</summary>
    public Task<IReadOnlyList<HealthReport>> ListHealthAsync(string location, int limit, CancellationToken cancellationToken) =>
        SendAsync($"{ApiRoutes.Health.Path(location)}?limit={limit}", ApiJson.Default.IReadOnlyListHealthReport, cancellationToken);

    /// <summary>Starts a run of the location's live release.</summary>
    public Task<StartedRun> StartRunAsync(RunRequest request, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.StartRun.Path(), request, ApiJson.Default.RunRequest, ApiJson.Default.StartedRun, cancellationToken);

    /// <summary>Runs, newest first, of one location or all, at most <paramref name="limit"/>.</summary>
    public Task<IReadOnlyList<Run>> ListRunsAsync(string? location, int limit, CancellationToken cancellationToken) =>
        SendAsync(
            $"{ApiRoutes.Runs.Path()}?{(location is null ? "" : $"location={Uri.EscapeDataString(location)}&")}limit={limit}",
            ApiJson.Default.IReadOnlyListRun,
            cancellationToken);

    public Task<CanceledRun> CancelRunAsync(string run, CancellationToken cancellationToken) =>
        SendAsync<object, CanceledRun>(ApiRoutes.CancelRun.Path(run), null, null, ApiJson.Default.CanceledRun, cancellationToken);

    /// <summary>Deletes the blobs no live, recent or pending release or running run uses.</summary>
    public Task<GarbageCollection> CollectGarbageAsync(CancellationToken cancellationToken) =>
        SendAsync<object, GarbageCollection>(ApiRoutes.CollectGarbage.Path(), null, null, ApiJson.Default.GarbageCollection, cancellationToken);

    /// <summary>The background scrub of the server's blob store and its quarantine (docs/integrity.md).</summary>
    public Task<ScrubReport> ScrubReportAsync(CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.Scrub.Path(), ApiJson.Default.ScrubReport, cancellationToken);

    /// <summary>The cron schedules of every live release, or of one location's (docs/schedules.md).</summary>
    public Task<IReadOnlyList<ScheduleSummary>> ListSchedulesAsync(string? location, CancellationToken cancellationToken) =>
        SendAsync(
            ApiRoutes.Schedules.Path() + (location is null ? "" : $"?location={Uri.EscapeDataString(location)}"),
            ApiJson.Default.IReadOnlyListScheduleSummary,
            cancellationToken);

    /// <summary>Pauses (or, with <paramref name="paused"/> false, resumes) a job's schedules on a location.</summary>
    public Task<ScheduleChange> PauseScheduleAsync(string location, string job, bool paused, CancellationToken cancellationToken) =>
        SendAsync<object, ScheduleChange>(
            (paused ? ApiRoutes.PauseSchedule : ApiRoutes.ResumeSchedule).Path(location, job), null, null, ApiJson.Default.ScheduleChange, cancellationToken);

    /// <summary>A location's environment (docs/env.md): names, plain values, and secrets without theirs.</summary>
    public Task<LocationEnv> GetEnvAsync(string location, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.Env.Path(location), ApiJson.Default.LocationEnv, cancellationToken);

    /// <summary>Changes a location's environment and waits until it is live (or failed, or stored for a first deploy).</summary>
    public Task<EnvChange> ChangeEnvAsync(string location, EnvChangeRequest change, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.ChangeEnv.Path(location), change, ApiJson.Default.EnvChangeRequest, ApiJson.Default.EnvChange, cancellationToken);

    /// <summary>The fleet as <c>GET /api/v1/agents</c> describes it (docs/api.md).</summary>
    public Task<JsonArray> ListAgentsAsync(CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.Agents.Path(), ApiJson.Default.JsonArray, cancellationToken);

    /// <summary>Moves an agent's locations off it and marks it draining: <c>{"agent","moved":[…]}</c>.</summary>
    public Task<JsonObject> DrainAgentAsync(string agent, CancellationToken cancellationToken) =>
        SendAsync<object, JsonObject>(ApiRoutes.DrainAgent.Path(agent), null, null, ApiJson.Default.JsonObject, cancellationToken);

    /// <summary>Lets a drained agent take locations and runs again.</summary>
    public Task<JsonObject> UndrainAgentAsync(string agent, CancellationToken cancellationToken) =>
        SendAsync<object, JsonObject>(ApiRoutes.UndrainAgent.Path(agent), null, null, ApiJson.Default.JsonObject, cancellationToken);

    /// <summary>Makes a token; the answer holds its secret, which the server does not keep.</summary>
    public Task<CreatedToken> CreateTokenAsync(TokenRequest request, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.CreateToken.Path(), request, ApiJson.Default.TokenRequest, ApiJson.Default.CreatedToken, cancellationToken);

    /// <summary>Every token, without secrets.</summary>
    public Task<IReadOnlyList<TokenSummary>> ListTokensAsync(CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.Tokens.Path(), ApiJson.Default.IReadOnlyListTokenSummary, cancellationToken);

    public Task<RevokedToken> RevokeTokenAsync(string name, CancellationToken cancellationToken) =>
        SendAsync<object, RevokedToken>(ApiRoutes.RevokeToken.Path(name), null, null, ApiJson.Default.RevokedToken, cancellationToken, HttpMethod.Delete);

    /// <summary>
    /// Refuses, with the server's own message, when this client's token may not deploy to <paramref name="location"/>:
    /// asked before a deploy builds anything, so a token without the right spends no build and uploads nothing. A
    /// server older than the question (404) is not asked; its deploy call decides.
    /// </summary>
    public async Task CheckMayDeployAsync(string location, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{ApiRoutes.MayDeploy.Path()}?location={Uri.EscapeDataString(location)}");
        try
        {
            using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != System.Net.HttpStatusCode.NotFound)
            {
                await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (HttpRequestException exception)
        {
            throw Unreachable(exception);
        }
    }

    /// <summary>The audit log, newest first, of one location or all, at most <paramref name="limit"/>.</summary>
    public Task<IReadOnlyList<AuditEntry>> ListAuditAsync(string? location, int limit, CancellationToken cancellationToken) =>
        SendAsync(
            $"{ApiRoutes.Audit.Path()}?{(location is null ? "" : $"location={Uri.EscapeDataString(location)}&")}limit={limit}",
            ApiJson.Default.IReadOnlyListAuditEntry,
            cancellationToken);

    /// <summary>Subscribes a URL to events; the answer holds the signing secret, shown this once.</summary>
    public Task<CreatedWebhook> CreateWebhookAsync(WebhookRequest request, CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.CreateWebhook.Path(), request, ApiJson.Default.WebhookRequest, ApiJson.Default.CreatedWebhook, cancellationToken);

    public Task<IReadOnlyList<WebhookSummary>> ListWebhooksAsync(CancellationToken cancellationToken) =>
        SendAsync(ApiRoutes.Webhooks.Path(), ApiJson.Default.IReadOnlyListWebhookSummary, cancellationToken);

    public Task<RemovedWebhook> RemoveWebhookAsync(string id, CancellationToken cancellationToken) =>
        SendAsync<object, RemovedWebhook>(ApiRoutes.RemoveWebhook.Path(id), null, null, ApiJson.Default.RemovedWebhook, cancellationToken, HttpMethod.Delete);

    /// <summary>Deliveries, newest first, of one subscription or all, with their attempts.</summary>
    public Task<IReadOnlyList<WebhookDeliverySummary>> ListWebhookDeliveriesAsync(string? subscription, int limit, CancellationToken cancellationToken) =>
        SendAsync(
            $"{ApiRoutes.WebhookDeliveries.Path()}?{(subscription is null ? "" : $"subscription={Uri.EscapeDataString(subscription)}&")}limit={limit}",
            ApiJson.Default.IReadOnlyListWebhookDeliverySummary,
            cancellationToken);

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
                        ? await _http.PutAsync(ApiRoutes.PutBlob.Path(digest.ToString()), content, cancellationToken).ConfigureAwait(false)
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
                    ApiRoutes.CommitBlob.Path(digest.ToString()),
                    Json(new BlobCommitRequest(direct.Id), ApiJson.Default.BlobCommitRequest),
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
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{ApiRoutes.RunEvents.Path(runId)}?follow={(follow ? "true" : "false")}");
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
            while (await ReadEventAsync(reader, runId, cancellationToken).ConfigureAwait(false) is { } runEvent)
            {
                yield return runEvent;
            }
        }
    }

    /// <summary>The next event of the stream; null at its end.</summary>
    /// <exception cref="ClientException">The connection broke, or the stream was cut in the middle of an event.</exception>
    private async Task<JsonObject?> ReadEventAsync(StreamReader reader, string runId, CancellationToken cancellationToken)
    {
        try
        {
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (line.Length > 0 && JsonNode.Parse(line) is JsonObject runEvent)
                {
                    return runEvent;
                }
            }

            return null;
        }
        catch (Exception exception) when (exception is IOException or HttpRequestException or JsonException)
        {
            // A server stopped or killed while a client follows: say so in a line, not with a stack trace.
            throw new ClientException(
                $"lost the connection to the Skiff server at {Server} while following run {runId} ({exception.Message}); the run goes on if its agent is still up (the agent of `skiff up` stops with it, and the run is failed once it is back). Follow it again with `skiff logs {runId} --follow` once the server is back.");
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _blobStore.Dispose();
    }

    private Task<TAnswer> SendAsync<TAnswer>(string path, JsonTypeInfo<TAnswer> answer, CancellationToken cancellationToken) =>
        SendAsync<object, TAnswer>(path, null, null, answer, cancellationToken, HttpMethod.Get);

    /// <summary>A POST (or <paramref name="method"/>) with <paramref name="body"/> as JSON; the answer read as <typeparamref name="TAnswer"/>.</summary>
    private async Task<TAnswer> SendAsync<TBody, TAnswer>(
        string path, TBody? body, JsonTypeInfo<TBody>? bodyType, JsonTypeInfo<TAnswer> answer, CancellationToken cancellationToken, HttpMethod? method = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Post, path);
        if (body is not null && bodyType is not null)
        {
            request.Content = Json(body, bodyType);
        }

        try
        {
            using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return JsonSerializer.Deserialize(text, answer)
                    ?? throw new ClientException($"the server answered {path} with null; is the client older than the server?");
            }
            catch (JsonException exception)
            {
                throw new ClientException($"the server's answer to {path} is not what this client understands ({exception.Message}); is the client older than the server?");
            }
        }
        catch (HttpRequestException exception)
        {
            throw Unreachable(exception);
        }
    }

    private static StringContent Json<T>(T body, JsonTypeInfo<T> type) =>
        new(JsonSerializer.Serialize(body, type), Encoding.UTF8, "application/json");

    private ClientException Unreachable(HttpRequestException exception) =>
        new($"could not reach the Skiff server at {Server} ({exception.Message}); is it running? Start one with `skiff up`.");

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
            message = JsonSerializer.Deserialize(text, ApiJson.Default.ApiError)?.Error;
        }
        catch (JsonException)
        {
        }

        throw new ClientException(
            response.StatusCode == HttpStatusCode.Unauthorized
                ? $"the server refused the token (401): {message ?? "unauthorized"}"
                : $"{message ?? text} (HTTP {(int)response.StatusCode})",
            usage: response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound);
    }
}
