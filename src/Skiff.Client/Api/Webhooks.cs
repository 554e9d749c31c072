using System.Text.Json.Serialization;

namespace Skiff.Client.Api;

// The messages of /api/v1/webhooks (docs/webhooks.md).

/// <summary>The body of <c>POST /api/v1/webhooks</c>: subscribe a URL to events.</summary>
/// <param name="Url">An absolute <c>http</c> or <c>https</c> URL the events are POSTed to.</param>
/// <param name="Events">Some of <c>run_succeeded</c>, <c>run_failed</c>, <c>run_canceled</c>, <c>deploy_live</c>, <c>deploy_failed</c>.</param>
/// <param name="Location">Only this location's events; left out, every location's.</param>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record WebhookRequest(string Url, IReadOnlyList<string> Events, string? Location = null);

/// <summary>The answer of <c>POST /api/v1/webhooks</c> (201): the only time the secret is shown.</summary>
/// <param name="Id">The subscription's id, <c>wh-…</c>.</param>
/// <param name="Url">Where events go.</param>
/// <param name="Events">Which.</param>
/// <param name="Location">Whose; null for every location.</param>
/// <param name="Secret"><c>whsec_</c> + base64 of the signing key: what a receiver verifies <c>webhook-signature</c> with.</param>
internal sealed record CreatedWebhook(string Id, string Url, IReadOnlyList<string> Events, string? Location, string Secret);

/// <summary>A subscription as <c>GET /api/v1/webhooks</c> lists it: never its secret.</summary>
/// <param name="Id">Its id.</param>
/// <param name="Url">Where events go.</param>
/// <param name="Events">Which.</param>
/// <param name="Location">Whose; null for every location.</param>
/// <param name="CreatedAt">When it was made.</param>
/// <param name="CreatedBy">The token that made it.</param>
internal sealed record WebhookSummary(string Id, string Url, IReadOnlyList<string> Events, string? Location, DateTimeOffset CreatedAt, string CreatedBy);

/// <summary>The answer of <c>DELETE /api/v1/webhooks/{id}</c>.</summary>
/// <param name="Id">The subscription.</param>
/// <param name="Removed">Always true: an id not recorded answers 404.</param>
internal sealed record RemovedWebhook(string Id, bool Removed);

/// <summary>One event sent, or being sent, to one subscription, as <c>GET /api/v1/webhooks/deliveries</c> lists it.</summary>
/// <param name="Id">Its <c>webhook-id</c>, the same on every attempt.</param>
/// <param name="Subscription">The subscription.</param>
/// <param name="Event">Which event.</param>
/// <param name="Subject">The run or deployment it is about.</param>
/// <param name="Location">Its location.</param>
/// <param name="CreatedAt">When the event happened.</param>
/// <param name="Status"><c>pending</c>, <c>delivered</c> or <c>failed</c> (given up on).</param>
/// <param name="NextAttemptAt">When it is tried next, while pending.</param>
/// <param name="Attempts">Every attempt, oldest first.</param>
internal sealed record WebhookDeliverySummary(
    string Id,
    string Subscription,
    string Event,
    string Subject,
    string Location,
    DateTimeOffset CreatedAt,
    string Status,
    DateTimeOffset? NextAttemptAt,
    IReadOnlyList<WebhookAttemptSummary> Attempts);

/// <summary>One attempt at a delivery.</summary>
/// <param name="Number">1 for the first.</param>
/// <param name="At">When it was sent.</param>
/// <param name="HttpStatus">The receiver's answer; null when there was none.</param>
/// <param name="Error">Why it did not succeed: no answer (refused, timed out) or a non-2xx one.</param>
internal sealed record WebhookAttemptSummary(int Number, DateTimeOffset At, int? HttpStatus, string? Error);
