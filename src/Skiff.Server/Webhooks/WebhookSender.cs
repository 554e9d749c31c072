using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Hosting;
using Skiff.Server.Metadata;

namespace Skiff.Server.Webhooks;

/// <summary>
/// Sends the outbox's deliveries (docs/webhooks.md): leases those due from the metadata store, POSTs each signed as
/// Standard Webhooks asks, records every attempt, and retries failures with exponential backoff and jitter (from
/// <see cref="FirstRetry"/>, doubling, at most <see cref="MaxRetry"/> apart) until <see cref="GiveUpAfter"/> has passed
/// since the event. Every server runs one; the lease keeps two from sending one delivery at once. One delivery's failure,
/// or the store's, never stops the loop.
/// </summary>
internal sealed class WebhookSender(IMetadataStore store, HttpMessageHandler handler, TimeProvider time) : BackgroundService
{
    /// <summary>The wait before the first retry; each later one doubles it.</summary>
    public static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(5);

    /// <summary>The longest wait between attempts.</summary>
    public static readonly TimeSpan MaxRetry = TimeSpan.FromHours(1);

    /// <summary>A delivery not answered with a 2xx this long after its event is failed: a receiver gets over a day to come back.</summary>
    public static readonly TimeSpan GiveUpAfter = TimeSpan.FromHours(25);

    /// <summary>How long a receiver has to answer one attempt.</summary>
    public static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(10);

    // How often the outbox is looked at for new or due deliveries: the delay a new event waits at most, and one
    // indexed query a second per server when there is nothing to send.
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    // Longer than an attempt can take, so a lease runs out only when its sender died (then another retries the delivery).
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(1);

    private const int BatchSize = 16;

    // The receiver's timeout is the network's, measured in real time: it is no schedule to be driven by the injected clock.
    private readonly HttpClient _http = new(handler, disposeHandler: false) { Timeout = AttemptTimeout };

    /// <summary>Where failures of a pass are logged; nowhere unless the host gives one.</summary>
    public ILogger Logger { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var sent = 0;
            try
            {
                sent = await SendDueAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                // The store is away (PostgreSQL restarting), or one delivery could not be recorded: the loop goes on, and
                // what was leased and not recorded is tried again once its lease runs out.
                Log.WebhookPassFailed(Logger, exception);
            }

            if (sent < BatchSize)
            {
                try
                {
                    await Task.Delay(PollInterval, time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Leases one batch of due deliveries, sends them side by side and records each attempt; returns how many were leased.</summary>
    internal async Task<int> SendDueAsync(CancellationToken cancellationToken)
    {
        var claim = Guid.NewGuid().ToString("N");
        var due = await store.ClaimWebhookDeliveriesAsync(claim, Lease, BatchSize, cancellationToken).ConfigureAwait(false);
        await Task.WhenAll(due.Select(delivery => AttemptAsync(delivery, claim, cancellationToken))).ConfigureAwait(false);
        return due.Count;
    }

    private async Task AttemptAsync(ClaimedWebhookDelivery delivery, string claim, CancellationToken cancellationToken)
    {
        var at = time.GetUtcNow();
        var (status, error) = await PostAsync(delivery, at, cancellationToken).ConfigureAwait(false);
        var succeeded = status is >= 200 and < 300;
        var now = time.GetUtcNow();
        var outcome = succeeded
            ? WebhookDeliveryStatuses.Delivered
            : now - delivery.CreatedAt >= GiveUpAfter ? WebhookDeliveryStatuses.Failed : WebhookDeliveryStatuses.Pending;
        DateTimeOffset? next = outcome == WebhookDeliveryStatuses.Pending ? now + Backoff(delivery.Attempts + 1) : null;
        Log.WebhookAttempted(Logger, delivery.Id, delivery.Url, outcome, error);
        // Recorded even while stopping: the attempt was made, and the receiver may have acted on it.
        await store.RecordWebhookAttemptAsync(delivery.Id, claim, at, status, error, outcome, next, CancellationToken.None).ConfigureAwait(false);
    }

    private async Task<(int? Status, string? Error)> PostAsync(ClaimedWebhookDelivery delivery, DateTimeOffset at, CancellationToken cancellationToken)
    {
        var timestamp = at.ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, delivery.Url)
        {
            Content = new StringContent(delivery.Payload, Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("webhook-id", delivery.Id);
        request.Headers.Add("webhook-timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", WebhookSignature.Sign(delivery.Secret, delivery.Id, timestamp, delivery.Payload));
        request.Headers.UserAgent.Add(new ProductInfoHeaderValue("Skiff-Webhooks", "1"));
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            return (status, status is >= 200 and < 300 ? null : $"the receiver answered {status} {response.ReasonPhrase}");
        }
        catch (HttpRequestException exception)
        {
            return (null, exception.Message);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, $"no answer within {AttemptTimeout.TotalSeconds:0} s");
        }
    }

    /// <summary>
    /// The wait after the <paramref name="attempt"/>th failed attempt: <see cref="FirstRetry"/> doubled each time, at most
    /// <see cref="MaxRetry"/>, less up to a fifth at random so receivers coming back are not hit by every sender at once.
    /// </summary>
    internal static TimeSpan Backoff(int attempt)
    {
        var exponential = FirstRetry * Math.Pow(2, Math.Min(attempt - 1, 20));
        var capped = exponential < MaxRetry ? exponential : MaxRetry;
        return capped * (1 - (Random.Shared.NextDouble() / 5));
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }
}
