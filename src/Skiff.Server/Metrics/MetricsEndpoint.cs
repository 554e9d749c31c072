using Prometheus;
using Prometheus.HttpMetrics;
using Skiff.Server.Api;
using Skiff.Server.Hosting;

namespace Skiff.Server.Metrics;

/// <summary><c>GET /metrics</c> in Prometheus's text format, and the HTTP request metrics it shows (docs/metrics.md).</summary>
internal static class MetricsEndpoint
{
    public const string Route = "/metrics";

    /// <summary>The content type of Prometheus's text exposition format 0.0.4, which every Prometheus reads.</summary>
    private const string TextFormat = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>
    /// Counts every request with its duration, by method, status code and route template (<c>endpoint</c>, such as
    /// <c>/api/v1/runs/{id}</c>; empty for a path that matched no route), never the raw path, whose ids would make a
    /// series per run. Outermost in the pipeline, so refusals (401, 403) and unexpected errors (500) count too.
    /// </summary>
    public static void UseHttpMetrics(WebApplication app, ServerMetrics metrics)
    {
        // The method is a label, and a client may send any token as one: each made-up method would add a score of
        // series for good, before any token is checked. No route of this API takes one, so it is answered here, uncounted.
        app.Use(async (context, next) =>
        {
            if (!KnownMethods.Contains(context.Request.Method))
            {
                context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                await context.Response.WriteAsJsonAsync(
                    new Skiff.Client.Api.ApiError($"this server takes only {string.Join(", ", KnownMethods)}; '{Truncated(context.Request.Method)}' is none of them."),
                    Skiff.Client.Api.ApiJson.Default.ApiError).ConfigureAwait(false);
                return;
            }

            await next(context).ConfigureAwait(false);
        });
        app.UseHttpMetrics(http =>
        {
            var factory = metrics.Factory;
            string[] labels = [HttpRequestLabelNames.Method, HttpRequestLabelNames.Code, HttpRequestLabelNames.Endpoint];
            http.RequestCount.Counter = factory.CreateCounter("skiff_http_requests_total", "HTTP requests answered, by method, status code and route template (endpoint).", labels);
            http.RequestDuration.Histogram = factory.CreateHistogram(
                "skiff_http_request_duration_seconds",
                "Time to answer HTTP requests, by method, status code and route template; a followed run stream or an agent's connection counts when it ends.",
                new HistogramConfiguration { LabelNames = labels, Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
            http.InProgress.Gauge = factory.CreateGauge(
                "skiff_http_requests_in_progress",
                "HTTP requests being answered, by method and route template (agent connections and followed runs stay in progress).",
                [HttpRequestLabelNames.Method, HttpRequestLabelNames.Endpoint]);
        });
    }

    private static readonly string[] KnownMethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

    private static string Truncated(string method) => method.Length > 40 ? method[..40] + "…" : method;

    /// <summary>
    /// Maps <see cref="Route"/>. Prometheus scrapes it with a bearer token (<c>authorization: {type: Bearer,
    /// credentials_file: …}</c>) that has at least the <c>read</c> role for every location: the figures span them all.
    /// </summary>
    public static void Map(WebApplication app, ServerMetrics metrics)
    {
        var endpoint = app.MapGet(Route, async Task (HttpContext context, CancellationToken cancellationToken) =>
        {
            context.Response.ContentType = TextFormat;
            await metrics.Registry.CollectAndExportAsTextAsync(context.Response.Body, cancellationToken).ConfigureAwait(false);
        })
            .Produces<string>(StatusCodes.Status200OK, "text/plain")
            .Fails(401, 403)
            .WithSummary("This server's metrics in Prometheus's text format (docs/metrics.md).");
        ((IEndpointConventionBuilder)endpoint).Add(Authorization.Declare);
    }
}
