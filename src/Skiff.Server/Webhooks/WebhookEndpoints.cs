using System.Security.Cryptography;
using Skiff.Client.Api;
using Skiff.Server.Api;
using Skiff.Server.Deployments;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;

namespace Skiff.Server.Webhooks;

/// <summary>Webhook subscriptions and their deliveries (docs/api.md, "Webhooks"; docs/webhooks.md).</summary>
internal static class WebhookEndpoints
{
    private const int MaxUrlLength = 2048;

    public static void Map(IEndpointRouteBuilder api, IMetadataStore store, ServerOptions options, TimeProvider time)
    {
        api.MapPost("/webhooks", async (HttpContext context, CancellationToken cancellationToken) =>
        {
            var body = await Requests.ReadAsync(context.Request, options.MaxJsonBytes, ApiJson.Default.WebhookRequest, cancellationToken).ConfigureAwait(false);
            var url = ValidUrl(Requests.Required(body.Url, "url"));
            var events = ValidEvents(body.Events);
            var location = body.Location;
            if (location is not null)
            {
                LocationNames.Validate(location);
                _ = await store.GetLocationAsync(location, cancellationToken).ConfigureAwait(false)
                    ?? throw new NotFoundException($"there is no location '{location}' (it has never been deployed to), so nothing was subscribed; check the name with `skiff locations`, or leave --location out for every location's events.");
            }

            var subscription = new WebhookSubscription(
                "wh-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)),
                url,
                events,
                location,
                WebhookSignature.NewSecret(),
                time.GetUtcNow(),
                Authorization.CallerOf(context).Token);
            await store.CreateWebhookSubscriptionAsync(subscription, cancellationToken).ConfigureAwait(false);
            return TypedResults.Created((string?)null, new CreatedWebhook(subscription.Id, subscription.Url, subscription.Events, subscription.Location, subscription.Secret));
        })
            .Accepts<WebhookRequest>("application/json")
            .Fails(400, 404)
            .WithSummary("Subscribe a URL to run and deploy events, of one location or all; the signing secret is in this answer only.");

        api.MapGet("/webhooks", async (CancellationToken cancellationToken) =>
        {
            var subscriptions = await store.ListWebhookSubscriptionsAsync(cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok<IReadOnlyList<WebhookSummary>>([.. subscriptions.Select(s => new WebhookSummary(s.Id, s.Url, s.Events, s.Location, s.CreatedAt, s.CreatedBy))]);
        })
            .WithSummary("Every webhook subscription, oldest first, without its secret.");

        api.MapDelete("/webhooks/{id}", async (string id, CancellationToken cancellationToken) =>
            await store.DeleteWebhookSubscriptionAsync(id, cancellationToken).ConfigureAwait(false)
                ? TypedResults.Ok(new RemovedWebhook(id, Removed: true))
                : throw new NotFoundException($"there is no webhook subscription '{id}'; `skiff webhooks list` lists them."))
            .Fails(404)
            .WithSummary("Remove a subscription with its deliveries: nothing more is sent to it, not even retries.");

        api.MapGet("/webhooks/deliveries", async (string? subscription, [System.ComponentModel.DataAnnotations.Range(1, 1000)] int? limit, CancellationToken cancellationToken) =>
        {
            subscription = string.IsNullOrWhiteSpace(subscription) ? null : subscription;
            var deliveries = await store.ListWebhookDeliveriesAsync(subscription, Math.Clamp(limit ?? 50, 1, 1000), cancellationToken).ConfigureAwait(false);
            // No deliveries for a subscription is an answer only when it exists: a mistyped id must not read as "nothing sent".
            if (subscription is not null && deliveries.Count == 0
                && !(await store.ListWebhookSubscriptionsAsync(cancellationToken).ConfigureAwait(false)).Any(s => s.Id == subscription))
            {
                throw new NotFoundException($"there is no webhook subscription '{subscription}'; `skiff webhooks list` lists them.");
            }

            return TypedResults.Ok<IReadOnlyList<WebhookDeliverySummary>>(
            [
                .. deliveries.Select(d => new WebhookDeliverySummary(
                    d.Id,
                    d.Subscription,
                    d.Event,
                    d.Subject,
                    d.Location,
                    d.CreatedAt,
                    d.Status,
                    d.NextAttemptAt,
                    [.. d.Attempts.Select(a => new WebhookAttemptSummary(a.Number, a.At, a.HttpStatus, a.Error))])),
            ]);
        })
            .Fails(404)
            .WithSummary("Webhook deliveries, newest first, of one subscription or all, with every attempt (limit: 1–1000, default 50).");
    }

    private static string ValidUrl(string url)
    {
        if (url.Length > MaxUrlLength)
        {
            throw new BadRequestException($"\"url\" is {url.Length} characters long; a webhook URL may have at most {MaxUrlLength}.");
        }

        // On Linux "/hooks/skiff" parses as an absolute file: URI; only a URL that spells its scheme is taken as one.
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !url.StartsWith(uri.Scheme + ":", StringComparison.OrdinalIgnoreCase))
        {
            throw new BadRequestException($"'{url}' is not an absolute URL; give one such as https://example.com/hooks/skiff.");
        }

        if (uri.Scheme is not ("http" or "https"))
        {
            throw new BadRequestException($"'{url}' is a {uri.Scheme}: URL; webhooks are POSTed over http or https, so give an http:// or https:// URL.");
        }

        return string.IsNullOrEmpty(uri.Host)
            ? throw new BadRequestException($"'{url}' names no host; give one such as https://example.com/hooks/skiff.")
            : url;
    }

    private static IReadOnlyList<string> ValidEvents(IReadOnlyList<string>? events)
    {
        if (events is not { Count: > 0 })
        {
            throw new BadRequestException($"the request needs \"events\": one or more of {string.Join(", ", WebhookEvents.All)}.");
        }

        foreach (var name in events)
        {
            if (!WebhookEvents.IsKnown(name))
            {
                throw new BadRequestException($"'{name}' is not a webhook event; use one or more of {string.Join(", ", WebhookEvents.All)}.");
            }
        }

        return [.. events.Distinct(StringComparer.Ordinal)];
    }
}
