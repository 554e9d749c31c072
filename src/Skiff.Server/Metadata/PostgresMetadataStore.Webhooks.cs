using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;
using Skiff.Server.Webhooks;

namespace Skiff.Server.Metadata;

internal sealed partial class PostgresMetadataStore
{
    private const string SelectSubscription = "SELECT id, url, events_json, location, secret, created_at, created_by FROM webhook_subscriptions";

    /// <remarks>Concurrency: one insert that does nothing on a taken id, reported as the conflict.</remarks>
    public async Task CreateWebhookSubscriptionAsync(WebhookSubscription subscription, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        var added = await WriteAsync(
            transaction => ExecuteAsync(
                Sql(
                    transaction,
                    """
                    INSERT INTO webhook_subscriptions (id, url, events_json, location, secret, created_at, created_by)
                    VALUES (@id, @url, @events, @location, @secret, @created, @by) ON CONFLICT DO NOTHING;
                    """,
                    ("@id", subscription.Id),
                    ("@url", subscription.Url),
                    ("@events", JsonSerializer.Serialize(subscription.Events)),
                    ("@location", subscription.Location),
                    ("@secret", subscription.Secret),
                    ("@created", Time(subscription.CreatedAt)),
                    ("@by", subscription.CreatedBy)),
                cancellationToken),
            cancellationToken).ConfigureAwait(false);
        if (added == 0)
        {
            throw MetadataConflictException.DuplicateId("webhook subscription", subscription.Id);
        }
    }

    public Task<IReadOnlyList<WebhookSubscription>> ListWebhookSubscriptionsAsync(CancellationToken cancellationToken) =>
        ReadAsync(connection => ListAsync(Sql(connection, $"{SelectSubscription} ORDER BY created_at, id;"), ReadSubscription, cancellationToken), cancellationToken);

    /// <remarks>
    /// Concurrency: its deliveries and their attempts go with it (ON DELETE CASCADE). A run's end enqueueing for it at
    /// the same time holds its row FOR SHARE, so the delete waits for that transaction and takes its delivery too.
    /// </remarks>
    public async Task<bool> DeleteWebhookSubscriptionAsync(string id, CancellationToken cancellationToken) =>
        await WriteAsync(transaction => ExecuteAsync(Sql(transaction, "DELETE FROM webhook_subscriptions WHERE id = @id;", ("@id", id)), cancellationToken), cancellationToken).ConfigureAwait(false) > 0;

    public Task<IReadOnlyList<WebhookDelivery>> ListWebhookDeliveriesAsync(string? subscription, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        // Two statements of one REPEATABLE READ snapshot, so an attempt recorded in between does not show on one side only.
        var where = subscription is null ? "" : "WHERE subscription = @subscription";
        return ReadAsync(
            async connection =>
            {
                await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
                var deliveries = await ListAsync(
                    Sql(
                        transaction,
                        $"SELECT id, subscription, event, subject, location, payload, created_at, status, next_attempt_at FROM webhook_deliveries {where} ORDER BY seq DESC LIMIT @limit;",
                        ("@subscription", subscription),
                        ("@limit", limit)),
                    reader => new WebhookDelivery(
                        reader.GetString(0),
                        reader.GetString(1),
                        reader.GetString(2),
                        reader.GetString(3),
                        reader.GetString(4),
                        reader.GetString(5),
                        ReadTime(reader, 6),
                        reader.GetString(7),
                        ReadNullableTime(reader, 8),
                        []),
                    cancellationToken).ConfigureAwait(false);
                var attempts = (await ListAsync(
                        Sql(
                            transaction,
                            "SELECT delivery, number, at, http_status, error FROM webhook_attempts WHERE delivery = ANY(@ids) ORDER BY delivery, number;",
                            ("@ids", deliveries.Select(d => d.Id).ToArray())),
                        reader => (Delivery: reader.GetString(0), Attempt: new WebhookAttempt(reader.GetInt32(1), ReadTime(reader, 2), reader.IsDBNull(3) ? null : reader.GetInt32(3), ReadNullableString(reader, 4))),
                        cancellationToken).ConfigureAwait(false))
                    .ToLookup(a => a.Delivery, a => a.Attempt, StringComparer.Ordinal);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return (IReadOnlyList<WebhookDelivery>)[.. deliveries.Select(d => d with { Attempts = [.. attempts[d.Id]] })];
            },
            cancellationToken);
    }

    /// <remarks>
    /// Concurrency: the due rows are locked FOR UPDATE SKIP LOCKED, so servers claiming at once each take other rows
    /// instead of queueing on the same ones; the lease written with them keeps them from later claims until it ends.
    /// </remarks>
    public Task<IReadOnlyList<ClaimedWebhookDelivery>> ClaimWebhookDeliveriesAsync(string claim, TimeSpan lease, int limit, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(claim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
        var now = Now();
        return WriteAsync(
            async transaction =>
            {
                var claimed = await ListAsync(
                    Sql(
                        transaction,
                        """
                        WITH due AS (
                            SELECT id FROM webhook_deliveries
                            WHERE status = @pending AND next_attempt_at <= @now AND (claimed_until IS NULL OR claimed_until <= @now)
                            ORDER BY next_attempt_at, seq LIMIT @limit
                            FOR UPDATE SKIP LOCKED)
                        UPDATE webhook_deliveries d SET claimed_by = @claim, claimed_until = @until
                        FROM due, webhook_subscriptions s
                        WHERE d.id = due.id AND s.id = d.subscription
                        RETURNING d.id, s.url, s.secret, d.payload, d.attempts, d.created_at, d.next_attempt_at, d.seq;
                        """,
                        ("@claim", claim),
                        ("@until", now + lease),
                        ("@pending", WebhookDeliveryStatuses.Pending),
                        ("@now", now),
                        ("@limit", limit)),
                    reader => (Delivery: new ClaimedWebhookDelivery(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4), ReadTime(reader, 5)), Due: ReadTime(reader, 6), Seq: reader.GetInt64(7)),
                    cancellationToken).ConfigureAwait(false);

                // RETURNING gives no order; the earliest due are sent first.
                return (IReadOnlyList<ClaimedWebhookDelivery>)[.. claimed.OrderBy(c => c.Due).ThenBy(c => c.Seq).Select(c => c.Delivery)];
            },
            cancellationToken);
    }

    /// <remarks>Concurrency: a conditional update on the claim; a sender whose lease another took changes nothing.</remarks>
    public Task<bool> RecordWebhookAttemptAsync(string deliveryId, string claim, DateTimeOffset at, int? httpStatus, string? error, string status, DateTimeOffset? nextAttemptAt, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(deliveryId);
        ArgumentException.ThrowIfNullOrEmpty(claim);
        if (!WebhookDeliveryStatuses.IsKnown(status))
        {
            throw new ArgumentException($"'{status}' is not a delivery status; expected one of the values in {nameof(WebhookDeliveryStatuses)}.", nameof(status));
        }

        return WriteAsync(
            async transaction =>
            {
                var numbers = await ListAsync(
                    Sql(
                        transaction,
                        """
                        UPDATE webhook_deliveries
                        SET status = @status, attempts = attempts + 1, next_attempt_at = @next, claimed_by = NULL, claimed_until = NULL
                        WHERE id = @id AND claimed_by = @claim AND status = @pending
                        RETURNING attempts;
                        """,
                        ("@id", deliveryId),
                        ("@claim", claim),
                        ("@status", status),
                        ("@pending", WebhookDeliveryStatuses.Pending),
                        ("@next", status == WebhookDeliveryStatuses.Pending ? Time(nextAttemptAt ?? at) : (DateTimeOffset?)null)),
                    reader => reader.GetInt32(0),
                    cancellationToken).ConfigureAwait(false);
                if (numbers.Count == 0)
                {
                    return false;
                }

                await ExecuteAsync(
                    Sql(
                        transaction,
                        "INSERT INTO webhook_attempts (delivery, number, at, http_status, error) VALUES (@delivery, @number, @at, @status, @error);",
                        ("@delivery", deliveryId),
                        ("@number", numbers[0]),
                        ("@at", Time(at)),
                        ("@status", httpStatus),
                        ("@error", error)),
                    cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }

    /// <summary>
    /// The outbox: in the transaction that stored a run's or deployment's end, one delivery of <paramref name="eventType"/>
    /// for every subscription that wants it there. The subscriptions are read FOR SHARE, so one removed at the same time
    /// waits for this transaction instead of breaking it. The unique (subscription, event, subject) makes a second call add nothing.
    /// </summary>
    private async Task EnqueueWebhooksAsync(NpgsqlTransaction transaction, string eventType, string location, string subject, Func<string> payload, CancellationToken cancellationToken)
    {
        var subscriptions = await ListAsync(
            Sql(transaction, "SELECT id, events_json FROM webhook_subscriptions WHERE location IS NULL OR location = @location ORDER BY id FOR SHARE;", ("@location", location)),
            reader => (Id: reader.GetString(0), Events: JsonSerializer.Deserialize<string[]>(reader.GetString(1)) ?? []),
            cancellationToken).ConfigureAwait(false);
        string? body = null;
        foreach (var subscription in subscriptions.Where(s => s.Events.Contains(eventType, StringComparer.Ordinal)))
        {
            body ??= payload();
            var now = Now();
            await ExecuteAsync(
                Sql(
                    transaction,
                    """
                    INSERT INTO webhook_deliveries (id, subscription, event, subject, location, payload, created_at, status, attempts, next_attempt_at)
                    VALUES (@id, @subscription, @event, @subject, @location, @payload, @now, @pending, 0, @now)
                    ON CONFLICT (subscription, event, subject) DO NOTHING;
                    """,
                    ("@id", NewDeliveryId()),
                    ("@subscription", subscription.Id),
                    ("@event", eventType),
                    ("@subject", subject),
                    ("@location", location),
                    ("@payload", body),
                    ("@now", now),
                    ("@pending", WebhookDeliveryStatuses.Pending)),
                cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Enqueues the event of a run that has just ended, read back in the same transaction.</summary>
    private async Task EnqueueRunEndedAsync(NpgsqlTransaction transaction, string runId, CancellationToken cancellationToken)
    {
        if (!await AnyWebhookSubscriptionAsync(transaction, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        var run = (await SingleOrNullAsync(Sql(transaction, $"{SelectRun} WHERE id = @id;", ("@id", runId)), ReadRun, cancellationToken).ConfigureAwait(false))!;
        if (WebhookEvents.ForRun(run.Status) is { } type)
        {
            await EnqueueWebhooksAsync(transaction, type, run.Location, run.Id, () => WebhookEvents.RunPayload(type, run), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Enqueues the event of a deployment whose outcome has just been decided, read back in the same transaction.</summary>
    private async Task EnqueueDeploymentDecidedAsync(NpgsqlTransaction transaction, string deploymentId, CancellationToken cancellationToken)
    {
        if (!await AnyWebhookSubscriptionAsync(transaction, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        var deployment = (await SingleOrNullAsync(Sql(transaction, $"{SelectDeployment} WHERE id = @id;", ("@id", deploymentId)), ReadDeployment, cancellationToken).ConfigureAwait(false))!;
        if (WebhookEvents.ForDeployment(deployment.Outcome) is { } type)
        {
            await EnqueueWebhooksAsync(transaction, type, deployment.Location, deployment.Id, () => WebhookEvents.DeploymentPayload(type, deployment), cancellationToken).ConfigureAwait(false);
        }
    }

    // Most platforms have no subscription: then a run's end costs one read more, not a read of the run.
    private static Task<bool> AnyWebhookSubscriptionAsync(NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        ExistsAsync(Sql(transaction, "SELECT 1 FROM webhook_subscriptions LIMIT 1;"), cancellationToken);

    /// <summary>A <c>webhook-id</c>: the spec asks only that it be unique per message.</summary>
    private static string NewDeliveryId() => "msg_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    private static WebhookSubscription ReadSubscription(NpgsqlDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        JsonSerializer.Deserialize<string[]>(reader.GetString(2)) ?? [],
        ReadNullableString(reader, 3),
        reader.GetString(4),
        ReadTime(reader, 5),
        reader.GetString(6));
}
