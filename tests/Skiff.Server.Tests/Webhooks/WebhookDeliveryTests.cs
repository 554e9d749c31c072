using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Server.Tests.Metadata;
using Skiff.Server.Webhooks;
using Skiff.Testing;

namespace Skiff.Server.Tests.Webhooks;

/// <summary>
/// Webhooks end to end: a real server on a real data folder sends to a real receiver that fails first attempts and is
/// down across a restart of the server; every event arrives, once per subscription, signed as the library expects.
/// </summary>
public sealed class WebhookDeliveryTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    // Starts at the real time: the receiver's library refuses a webhook-timestamp more than 5 minutes from its clock,
    // and the test moves this clock on by about a minute and a half.
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private readonly Workspace _workspace = new();
    private readonly WebhookReceiver _receiver = new();
    private readonly ReleaseRecord _release = Some.Release();
    private RunningServer? _server;

    public async Task InitializeAsync()
    {
        await _receiver.StartAsync();
        _server = await StartServerAsync();
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        await _receiver.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task Every_event_is_delivered_once_per_subscription_through_failures_a_receiver_down_and_a_server_restart()
    {
        var store = _server!.Store;
        await store.RegisterReleaseAsync(_release, CancellationToken.None);
        await store.CreateDeploymentAsync(Some.Deployment("d-billing-1", "billing", _release, outcome: DeploymentOutcomes.Live), CancellationToken.None);
        await store.CreateDeploymentAsync(Some.Deployment("d-analytics-1", "analytics", _release, outcome: DeploymentOutcomes.Live), CancellationToken.None);
        await SubscribeAsync("all", null, WebhookEvents.All);
        await SubscribeAsync("billing-failures", "billing", [WebhookEvents.RunFailed]);

        // Received, answered 500, retried later: 4 deliveries.
        await EndRunAsync("r1", "billing", RunStatuses.Failed);
        await EndRunAsync("r2", "analytics", RunStatuses.Succeeded);
        await DecideDeploymentAsync("d-billing-2", "billing", DeploymentOutcomes.Live);
        await WaitAsync(() => _receiver.Received.Select(r => r.Id).Distinct().Count() == 4);

        // Refused while the receiver is down, then the server stops too: 3 deliveries more.
        await _receiver.StopAsync();
        await EndRunAsync("r3", "billing", RunStatuses.Canceled);
        await EndRunAsync("r4", "analytics", RunStatuses.Failed);
        await DecideDeploymentAsync("d-analytics-2", "analytics", DeploymentOutcomes.Failed);
        await WaitAsync(async () => (await _server.Store.ListWebhookDeliveriesAsync(null, 100, CancellationToken.None)).Count(d => d.Subject is "r3" or "r4" or "d-analytics-2" && d.Attempts.Count > 0) == 3);
        await _server.DisposeAsync();
        _server = null;

        await _receiver.StartAsync(_receiver.Port);
        _server = await StartServerAsync();
        await WaitAsync(async () => (await _server.Store.ListWebhookDeliveriesAsync(null, 100, CancellationToken.None)).All(d => d.Status == WebhookDeliveryStatuses.Delivered));

        var deliveries = await _server.Store.ListWebhookDeliveriesAsync(null, 100, CancellationToken.None);
        deliveries.Select(d => (d.Subscription.Length > 0, d.Event, d.Subject)).ShouldBe(
            [
                (true, "run_failed", "r1"), (true, "run_failed", "r1"), (true, "run_succeeded", "r2"), (true, "deploy_live", "d-billing-2"),
                (true, "run_canceled", "r3"), (true, "run_failed", "r4"), (true, "deploy_failed", "d-analytics-2"),
            ],
            ignoreOrder: true);
        var received = _receiver.Received.ToList();
        received.ShouldAllBe(r => r.Valid);
        received.Select(r => r.Id).Distinct().ShouldBe(deliveries.Select(d => d.Id), ignoreOrder: true);
        received.Where(r => r.Status == 204).Select(r => r.Id).ShouldBe(deliveries.Select(d => d.Id), ignoreOrder: true);
        received.Where(r => r.Path == "billing-failures").Select(r => (string?)JsonNode.Parse(r.Body)!["data"]!["run"]).Distinct().ShouldBe(["r1"]);
        foreach (var delivery in deliveries)
        {
            // The body sent on the last attempt is the one sent on the first.
            received.Where(r => r.Id == delivery.Id).Select(r => r.Body).Distinct().ShouldHaveSingleItem().ShouldBe(delivery.Payload);
            delivery.Attempts[^1].HttpStatus.ShouldBe(204);
            delivery.Attempts.Select(a => a.Number).ShouldBe(Enumerable.Range(1, delivery.Attempts.Count));
        }

        deliveries.Where(d => d.Subject is "r3" or "r4" or "d-analytics-2").ShouldAllBe(d => d.Attempts[0].HttpStatus == null && d.Attempts[0].Error != null);
        deliveries.Where(d => d.Subject is "r1" or "r2" or "d-billing-2").ShouldAllBe(d => d.Attempts[0].HttpStatus == 500);
    }

    private async Task<RunningServer> StartServerAsync() =>
        await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0 }, _clock, CancellationToken.None);

    private async Task SubscribeAsync(string path, string? location, IReadOnlyList<string> events)
    {
        using var http = new HttpClient { BaseAddress = _server!.Url };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _server.Token);
        using var response = await http.PostAsJsonAsync("api/v1/webhooks", new JsonObject { ["url"] = _receiver.Url(path), ["events"] = new JsonArray([.. events.Select(e => JsonValue.Create(e))]), ["location"] = location });
        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        var created = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        _receiver.Secrets[path] = (string)created["secret"]!;
    }

    private async Task EndRunAsync(string id, string location, string status)
    {
        await _server!.Store.CreateRunAsync(Some.Run(id, location, _release, _clock.GetUtcNow()), CancellationToken.None);
        (await _server.Store.CompleteRunAsync(id, status, status == RunStatuses.Succeeded ? null : "as the test asked", CancellationToken.None)).ShouldBeTrue();
    }

    private async Task DecideDeploymentAsync(string id, string location, string outcome)
    {
        await _server!.Store.CreateDeploymentAsync(Some.Deployment(id, location, _release, _clock.GetUtcNow()), CancellationToken.None);
        await _server.Store.CompleteDeploymentAsync(id, outcome, outcome == DeploymentOutcomes.Failed ? "did not load" : null, "[]", null, new Dictionary<string, long>(), CancellationToken.None);
    }

    private Task WaitAsync(Func<bool> condition) => WaitAsync(() => Task.FromResult(condition()));

    /// <summary>Moves the server's clock on a second at a time until <paramref name="condition"/> holds: retries come due without waiting for them.</summary>
    private async Task WaitAsync(Func<Task<bool>> condition)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (!await condition())
        {
            _clock.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(10, deadline.Token);
        }
    }
}
