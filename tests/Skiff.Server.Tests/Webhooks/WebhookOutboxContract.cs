using System.Text.Json.Nodes;
using Skiff.Server.Metadata;
using Skiff.Server.Tests.Metadata;
using Skiff.Server.Webhooks;
using Skiff.Testing;

namespace Skiff.Server.Tests.Webhooks;

/// <summary>The metadata contract for webhook subscriptions and the outbox, run against each store by the classes below it.</summary>
public abstract class WebhookOutboxContract : IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(1);
    private readonly ReleaseRecord _release = Some.Release();
    private IContractDatabase _database = null!;
    private IMetadataStore _store = null!;

    public async Task InitializeAsync()
    {
        _database = await CreateDatabaseAsync();
        _store = await _database.OpenStoreAsync();
        await Some.LiveDeploymentAsync(_store, "d-analytics", "analytics", _release);
        await Some.LiveDeploymentAsync(_store, "d-billing", "billing", _release);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _database.DisposeAsync();
    }

    private protected abstract Task<IContractDatabase> CreateDatabaseAsync();

    [Fact]
    public async Task A_run_that_ends_adds_one_delivery_per_matching_subscription_in_its_transaction_and_never_a_second()
    {
        await SubscribeAsync("wh-all-failed", null, WebhookEvents.RunFailed);
        await SubscribeAsync("wh-billing", "billing", WebhookEvents.RunFailed, WebhookEvents.RunSucceeded);
        await SubscribeAsync("wh-analytics", "analytics", WebhookEvents.RunFailed);
        await SubscribeAsync("wh-deploys", null, WebhookEvents.DeployLive);
        await _store.CreateRunAsync(Some.Run("r1", "billing", _release), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("r2", "billing", _release), CancellationToken.None);

        (await _store.CompleteRunAsync("r1", RunStatuses.Failed, "boom", CancellationToken.None)).ShouldBeTrue();
        (await _store.CompleteRunAsync("r1", RunStatuses.Succeeded, null, CancellationToken.None)).ShouldBeFalse();
        (await _store.FailRunAsync("r1", "agent lost", (_, _) => "{}", CancellationToken.None)).ShouldBeFalse();
        (await _store.FailRunAsync("r2", "agent lost", (_, _) => "{}", CancellationToken.None)).ShouldBeTrue();

        var deliveries = await _store.ListWebhookDeliveriesAsync(null, 100, CancellationToken.None);
        deliveries.Select(d => (d.Subscription, d.Event, d.Subject)).ShouldBe(
            [
                ("wh-all-failed", "run_failed", "r1"), ("wh-billing", "run_failed", "r1"),
                ("wh-all-failed", "run_failed", "r2"), ("wh-billing", "run_failed", "r2"),
            ],
            ignoreOrder: true);
        deliveries.Select(d => d.Id).Distinct().Count().ShouldBe(4);
        deliveries.ShouldAllBe(d => d.Status == WebhookDeliveryStatuses.Pending && d.Attempts.Count == 0 && d.NextAttemptAt == _database.Clock.GetUtcNow());
        var body = JsonNode.Parse(deliveries.First(d => d.Subject == "r1").Payload)!;
        ((string?)body["type"]).ShouldBe("run_failed");
        ((string?)body["data"]!["run"]).ShouldBe("r1");
        ((string?)body["data"]!["status"]).ShouldBe("failed");
        ((string?)body["data"]!["reason"]).ShouldBe("boom");
        ((string?)body["timestamp"]).ShouldBe("2025-01-02T03:04:05.000Z");
    }

    [Fact]
    public async Task A_deployment_decided_live_or_failed_adds_its_event_and_a_pending_one_none()
    {
        await SubscribeAsync("wh-deploys", null, WebhookEvents.DeployLive, WebhookEvents.DeployFailed);
        await _store.CreateDeploymentAsync(Some.Deployment("d-live", "analytics", _release), CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d-bad", "billing", _release), CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d-stranded", "reports", _release), CancellationToken.None);
        (await _store.ListWebhookDeliveriesAsync(null, 100, CancellationToken.None)).ShouldBeEmpty();

        await _store.CompleteDeploymentAsync("d-live", DeploymentOutcomes.Live, null, "[]", null, new Dictionary<string, long>(), CancellationToken.None);
        await _store.CompleteDeploymentAsync("d-bad", DeploymentOutcomes.Failed, "did not load", null, null, new Dictionary<string, long>(), CancellationToken.None);
        await Should.ThrowAsync<MetadataConflictException>(_store.CompleteDeploymentAsync("d-bad", DeploymentOutcomes.Failed, "again", null, null, new Dictionary<string, long>(), CancellationToken.None));
        (await _store.FailPendingDeploymentsAsync("the server stopped", CancellationToken.None)).ShouldBe(1);

        var deliveries = await _store.ListWebhookDeliveriesAsync("wh-deploys", 100, CancellationToken.None);
        deliveries.Select(d => (d.Event, d.Subject, d.Location)).ShouldBe(
            [("deploy_failed", "d-stranded", "reports"), ("deploy_failed", "d-bad", "billing"), ("deploy_live", "d-live", "analytics")]);
        var body = JsonNode.Parse(deliveries[1].Payload)!;
        ((string?)body["data"]!["deployment"]).ShouldBe("d-bad");
        ((string?)body["data"]!["outcome"]).ShouldBe("failed");
        ((string?)body["data"]!["error"]).ShouldBe("did not load");
    }

    [Fact]
    public async Task Claims_made_at_once_by_two_servers_share_out_the_due_deliveries_and_a_lease_keeps_them_until_it_ends()
    {
        await SubscribeAsync("wh-1", null, WebhookEvents.RunSucceeded);
        for (var i = 0; i < 12; i++)
        {
            await _store.CreateRunAsync(Some.Run($"r{i}", "analytics", _release), CancellationToken.None);
            await _store.CompleteRunAsync($"r{i}", RunStatuses.Succeeded, null, CancellationToken.None);
        }

        await using var other = await _database.OpenStoreAsync();
        var claims = await Task.WhenAll(
            Task.Run(() => _store.ClaimWebhookDeliveriesAsync("claim-a", Lease, 8, CancellationToken.None)),
            Task.Run(() => other.ClaimWebhookDeliveriesAsync("claim-b", Lease, 8, CancellationToken.None)));

        var ids = claims.SelectMany(c => c.Select(d => d.Id)).ToList();
        ids.Count.ShouldBe(12);
        ids.Distinct().Count().ShouldBe(12);
        claims.ShouldAllBe(c => c.All(d => d.Url == "http://127.0.0.1:9/wh-1" && d.Secret.StartsWith("whsec_") && d.Attempts == 0));
        (await _store.ClaimWebhookDeliveriesAsync("claim-c", Lease, 100, CancellationToken.None)).ShouldBeEmpty();

        _database.Clock.Advance(Lease);
        var reclaimed = await _store.ClaimWebhookDeliveriesAsync("claim-d", Lease, 100, CancellationToken.None);

        reclaimed.Select(d => d.Id).ShouldBe(ids, ignoreOrder: true);
        var first = claims[0][0];
        (await _store.RecordWebhookAttemptAsync(first.Id, "claim-a", _database.Clock.GetUtcNow(), 200, null, WebhookDeliveryStatuses.Delivered, null, CancellationToken.None)).ShouldBeFalse();
        (await _store.ListWebhookDeliveriesAsync(null, 100, CancellationToken.None)).Single(d => d.Id == first.Id).Attempts.ShouldBeEmpty();
    }

    [Fact]
    public async Task Attempts_are_numbered_kept_and_decide_when_a_delivery_is_due_again()
    {
        await SubscribeAsync("wh-1", null, WebhookEvents.RunCanceled);
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release), CancellationToken.None);
        await _store.CompleteRunAsync("r1", RunStatuses.Canceled, "asked", CancellationToken.None);
        var start = _database.Clock.GetUtcNow();

        var first = (await _store.ClaimWebhookDeliveriesAsync("c1", Lease, 10, CancellationToken.None)).ShouldHaveSingleItem();
        (await _store.RecordWebhookAttemptAsync(first.Id, "c1", start, 500, "the receiver answered 500", WebhookDeliveryStatuses.Pending, start + TimeSpan.FromSeconds(5), CancellationToken.None)).ShouldBeTrue();
        (await _store.ClaimWebhookDeliveriesAsync("c2", Lease, 10, CancellationToken.None)).ShouldBeEmpty();
        _database.Clock.Advance(TimeSpan.FromSeconds(5));
        var second = (await _store.ClaimWebhookDeliveriesAsync("c3", Lease, 10, CancellationToken.None)).ShouldHaveSingleItem();
        second.Attempts.ShouldBe(1);
        (await _store.RecordWebhookAttemptAsync(second.Id, "c3", start + TimeSpan.FromSeconds(5), null, "Connection refused", WebhookDeliveryStatuses.Pending, start + TimeSpan.FromSeconds(15), CancellationToken.None)).ShouldBeTrue();
        _database.Clock.Advance(TimeSpan.FromSeconds(10));
        var third = (await _store.ClaimWebhookDeliveriesAsync("c4", Lease, 10, CancellationToken.None)).ShouldHaveSingleItem();
        (await _store.RecordWebhookAttemptAsync(third.Id, "c4", start + TimeSpan.FromSeconds(15), 204, null, WebhookDeliveryStatuses.Delivered, null, CancellationToken.None)).ShouldBeTrue();
        _database.Clock.Advance(TimeSpan.FromHours(2));

        (await _store.ClaimWebhookDeliveriesAsync("c5", Lease, 10, CancellationToken.None)).ShouldBeEmpty();
        var delivery = (await _store.ListWebhookDeliveriesAsync("wh-1", 10, CancellationToken.None)).ShouldHaveSingleItem();
        delivery.Id.ShouldBe(first.Id);
        delivery.Status.ShouldBe(WebhookDeliveryStatuses.Delivered);
        delivery.NextAttemptAt.ShouldBeNull();
        delivery.Attempts.ShouldBe(
        [
            new WebhookAttempt(1, start, 500, "the receiver answered 500"),
            new WebhookAttempt(2, start + TimeSpan.FromSeconds(5), null, "Connection refused"),
            new WebhookAttempt(3, start + TimeSpan.FromSeconds(15), 204, null),
        ]);
    }

    [Fact]
    public async Task A_removed_subscription_takes_its_deliveries_with_it_and_gets_no_more()
    {
        await SubscribeAsync("wh-1", null, WebhookEvents.RunSucceeded);
        await SubscribeAsync("wh-2", null, WebhookEvents.RunSucceeded);
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release), CancellationToken.None);
        await _store.CompleteRunAsync("r1", RunStatuses.Succeeded, null, CancellationToken.None);
        var claimed = await _store.ClaimWebhookDeliveriesAsync("c1", Lease, 10, CancellationToken.None);

        (await _store.DeleteWebhookSubscriptionAsync("wh-1", CancellationToken.None)).ShouldBeTrue();
        (await _store.DeleteWebhookSubscriptionAsync("wh-1", CancellationToken.None)).ShouldBeFalse();
        await _store.CreateRunAsync(Some.Run("r2", "analytics", _release), CancellationToken.None);
        await _store.CompleteRunAsync("r2", RunStatuses.Succeeded, null, CancellationToken.None);

        (await _store.ListWebhookSubscriptionsAsync(CancellationToken.None)).Select(s => s.Id).ShouldBe(["wh-2"]);
        (await _store.ListWebhookDeliveriesAsync(null, 10, CancellationToken.None)).Select(d => (d.Subscription, d.Subject)).ShouldBe([("wh-2", "r2"), ("wh-2", "r1")]);
        foreach (var delivery in claimed)
        {
            // The removed subscription's delivery was leased: its sender's record changes nothing.
            (await _store.RecordWebhookAttemptAsync(delivery.Id, "c1", _database.Clock.GetUtcNow(), 204, null, WebhookDeliveryStatuses.Delivered, null, CancellationToken.None))
                .ShouldBe(delivery.Url.EndsWith("/wh-2", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_subscription_round_trips_and_an_id_taken_is_refused()
    {
        var subscription = new WebhookSubscription("wh-1", "https://example.com/hook?k=1", ["run_failed", "deploy_live"], "billing", "whsec_c2VjcmV0", Some.Time, "server");

        await _store.CreateWebhookSubscriptionAsync(subscription, CancellationToken.None);
        await Should.ThrowAsync<MetadataConflictException>(_store.CreateWebhookSubscriptionAsync(subscription with { Url = "https://other" }, CancellationToken.None));

        var stored = (await _store.ListWebhookSubscriptionsAsync(CancellationToken.None)).ShouldHaveSingleItem();
        stored.ShouldBe(subscription with { Events = stored.Events });
        stored.Events.ShouldBe(["run_failed", "deploy_live"]);
    }

    [Fact]
    public async Task A_run_ended_by_its_end_event_in_a_batch_adds_its_delivery_in_that_transaction()
    {
        await SubscribeAsync("wh-billing", "billing", WebhookEvents.RunSucceeded);
        await _store.CreateRunAsync(Some.Run("r1", "billing", _release), CancellationToken.None);

        await _store.AppendRunEventsAsync([new("r1", 1, "{}"), new("r1", 2, "{}", RunStatuses.Succeeded)], CancellationToken.None);
        await _store.AppendRunEventsAsync([new("r1", 2, "{}", RunStatuses.Succeeded)], CancellationToken.None);

        (await _store.ListWebhookDeliveriesAsync(null, 100, CancellationToken.None)).Select(d => (d.Subscription, d.Event, d.Subject))
            .ShouldBe([("wh-billing", "run_succeeded", "r1")]);
    }

    private Task SubscribeAsync(string id, string? location, params string[] events) =>
        _store.CreateWebhookSubscriptionAsync(
            new WebhookSubscription(id, $"http://127.0.0.1:9/{id}", events, location, WebhookSignature.NewSecret(), _database.Clock.GetUtcNow(), "server"),
            CancellationToken.None);
}

public sealed class SqliteWebhookOutboxTests : WebhookOutboxContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresWebhookOutboxTests(PostgresServer server) : WebhookOutboxContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
