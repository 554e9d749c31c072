namespace Skiff.Server.Webhooks;

/// <summary>Where a webhook is sent, for which events, and the secret its deliveries are signed with.</summary>
/// <param name="Id">Chosen by the server, <c>wh-…</c>.</param>
/// <param name="Url">An absolute http or https URL.</param>
/// <param name="Events">Some of <see cref="WebhookEvents.All"/>, each once.</param>
/// <param name="Location">The only location whose events it is sent; null for every location.</param>
/// <param name="Secret"><c>whsec_</c> + base64 of the key bytes (<see cref="WebhookSignature"/>). Kept as it is, since signing needs it.</param>
/// <param name="CreatedAt">When it was made.</param>
/// <param name="CreatedBy">The name of the token that made it.</param>
internal sealed record WebhookSubscription(string Id, string Url, IReadOnlyList<string> Events, string? Location, string Secret, DateTimeOffset CreatedAt, string CreatedBy);

/// <summary>The values of <see cref="WebhookDelivery.Status"/>.</summary>
internal static class WebhookDeliveryStatuses
{
    /// <summary>Not delivered yet; tried again at its next attempt time.</summary>
    public const string Pending = "pending";

    /// <summary>An attempt was answered with a 2xx status.</summary>
    public const string Delivered = "delivered";

    /// <summary>Given up on: no attempt succeeded within <see cref="WebhookSender.GiveUpAfter"/>.</summary>
    public const string Failed = "failed";

    public static bool IsKnown(string status) => status is Pending or Delivered or Failed;
}

/// <summary>One event to send to one subscription: a row of the outbox, written with the change it reports.</summary>
/// <param name="Id">The <c>webhook-id</c> header of every attempt, <c>msg_…</c>: a receiver dedupes on it.</param>
/// <param name="Subscription">The subscription it is sent to.</param>
/// <param name="Event">One of <see cref="WebhookEvents.All"/>.</param>
/// <param name="Subject">The run or deployment the event is about.</param>
/// <param name="Location">Its location.</param>
/// <param name="Payload">The body, as sent on every attempt.</param>
/// <param name="CreatedAt">When the event was recorded.</param>
/// <param name="Status">One of <see cref="WebhookDeliveryStatuses"/>.</param>
/// <param name="NextAttemptAt">When it is tried next; null once delivered or failed.</param>
/// <param name="Attempts">Every attempt so far, oldest first.</param>
internal sealed record WebhookDelivery(
    string Id,
    string Subscription,
    string Event,
    string Subject,
    string Location,
    string Payload,
    DateTimeOffset CreatedAt,
    string Status,
    DateTimeOffset? NextAttemptAt,
    IReadOnlyList<WebhookAttempt> Attempts);

/// <summary>One try at sending a delivery.</summary>
/// <param name="Number">1 for the first.</param>
/// <param name="At">When it was sent.</param>
/// <param name="HttpStatus">The receiver's answer; null when there was none.</param>
/// <param name="Error">Why there was no answer (refused, timed out), or what a non-2xx answer said, briefly.</param>
internal sealed record WebhookAttempt(int Number, DateTimeOffset At, int? HttpStatus, string? Error);

/// <summary>A due delivery a sender has leased (<see cref="Metadata.IMetadataStore.ClaimWebhookDeliveriesAsync"/>): what it needs to send it.</summary>
/// <param name="Id">The delivery, and its <c>webhook-id</c>.</param>
/// <param name="Url">The subscription's URL.</param>
/// <param name="Secret">The subscription's secret.</param>
/// <param name="Payload">The body.</param>
/// <param name="Attempts">How many attempts were made before this one.</param>
/// <param name="CreatedAt">When the event was recorded: retries stop <see cref="WebhookSender.GiveUpAfter"/> later.</param>
internal sealed record ClaimedWebhookDelivery(string Id, string Url, string Secret, string Payload, int Attempts, DateTimeOffset CreatedAt);
