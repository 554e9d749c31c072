using System.CommandLine;
using System.Globalization;
using Skiff.Client.Api;

namespace Skiff.Cli.Commands;

/// <summary><c>skiff webhooks add|list|remove|deliveries</c>: run and deploy events POSTed to URLs (docs/webhooks.md).</summary>
internal static class WebhookCommands
{
    private static readonly string[] Events = ["run_succeeded", "run_failed", "run_canceled", "deploy_live", "deploy_failed"];

    public static IEnumerable<Command> Create()
    {
        yield return new Command("webhooks", "Send run and deploy events to URLs, signed as Standard Webhooks (docs/webhooks.md). Managing them needs an admin token; deliveries, a read token.")
        {
            Add(),
            List(),
            Remove(),
            Deliveries(),
        };
    }

    private static Command Add()
    {
        var url = new Argument<string>("url") { Description = "Where the events are POSTed: an http:// or https:// URL." };
        var on = new Option<string[]>("--on") { Description = $"An event to send: {string.Join(", ", Events)}; repeat for more.", Required = true, AllowMultipleArgumentsPerToken = false };
        on.AcceptOnlyFromAmong(Events);
        var location = new Option<string?>("--location") { Description = "Only this location's events. Left out: every location's." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("add", "Subscribe a URL to events and print its id and signing secret, once.") { url, on, location, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var created = await api.CreateWebhookAsync(new WebhookRequest(parse.GetValue(url)!, parse.GetValue(on) ?? [], parse.GetValue(location)), cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(QueryCommands.Node(created, ApiJson.Default.CreatedWebhook).ToJsonString(QueryCommands.Indented));
                return 0;
            }

            Console.WriteLine($"webhook {created.Id}: {string.Join(", ", created.Events)} of {created.Location ?? "every location"} to {created.Url}");
            Console.WriteLine(created.Secret);
            Console.Error.WriteLine("This is the only time the secret is shown; the receiver verifies webhook-signature with it (docs/webhooks.md).");
            return 0;
        }));
        return command;
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("list", "List the webhook subscriptions (never their secrets).") { json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var webhooks = await api.ListWebhooksAsync(cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(QueryCommands.Node(webhooks, ApiJson.Default.IReadOnlyListWebhookSummary).ToJsonString(QueryCommands.Indented));
                return 0;
            }

            Console.Write(QueryCommands.Table(
                ["ID", "URL", "EVENTS", "LOCATION", "CREATED", "BY"],
                [.. webhooks.Select(w => new[] { w.Id, w.Url, string.Join(",", w.Events), w.Location ?? "(every)", When(w.CreatedAt), w.CreatedBy })]));
            return 0;
        }));
        return command;
    }

    private static Command Remove()
    {
        var id = new Argument<string>("id") { Description = "The subscription, as `skiff webhooks list` shows it." };
        var client = new ClientOptions();
        var command = new Command("remove", "Remove a subscription: nothing more is sent to it, not even retries of what was pending.") { id };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var removed = await api.RemoveWebhookAsync(parse.GetValue(id)!, cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"webhook {removed.Id} removed");
            return 0;
        }));
        return command;
    }

    private static Command Deliveries()
    {
        var subscription = new Option<string?>("--subscription") { Description = "Only the deliveries to this subscription." };
        var limit = new Option<int>("--limit") { Description = "At most this many, newest first (1–1000).", DefaultValueFactory = _ => 20 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("deliveries", "List webhook deliveries with every attempt: when, the receiver's HTTP status or the error, and the next attempt.") { subscription, limit, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var deliveries = await api.ListWebhookDeliveriesAsync(parse.GetValue(subscription), parse.GetValue(limit), cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(QueryCommands.Node(deliveries, ApiJson.Default.IReadOnlyListWebhookDeliverySummary).ToJsonString(QueryCommands.Indented));
                return 0;
            }

            if (deliveries.Count == 0)
            {
                Console.WriteLine("no deliveries");
                return 0;
            }

            foreach (var delivery in deliveries)
            {
                var next = delivery.NextAttemptAt is { } at ? $", next attempt {When(at)}" : "";
                Console.WriteLine($"{delivery.Id}  {delivery.Event} {delivery.Subject} ({delivery.Location}) to {delivery.Subscription}: {delivery.Status}{next}");
                foreach (var attempt in delivery.Attempts)
                {
                    Console.WriteLine($"  #{attempt.Number} {When(attempt.At)}  {(attempt.HttpStatus is { } status ? status.ToString(CultureInfo.InvariantCulture) : "-")}  {attempt.Error ?? "ok"}");
                }
            }

            return 0;
        }));
        return command;
    }

    private static string When(DateTimeOffset at) => at.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
}
