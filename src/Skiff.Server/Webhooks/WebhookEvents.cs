using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Client.Api;
using Skiff.Server.Api;
using Skiff.Server.Metadata;

namespace Skiff.Server.Webhooks;

/// <summary>
/// What a webhook subscription can be sent (docs/webhooks.md), and the body each event is delivered with:
/// <c>{"type", "timestamp", "data"}</c>, <c>data</c> being the run or deployment as the API shows it.
/// </summary>
internal static class WebhookEvents
{
    public const string RunSucceeded = "run_succeeded";
    public const string RunFailed = "run_failed";
    public const string RunCanceled = "run_canceled";
    public const string DeployLive = "deploy_live";
    public const string DeployFailed = "deploy_failed";

    public static IReadOnlyList<string> All { get; } = [RunSucceeded, RunFailed, RunCanceled, DeployLive, DeployFailed];

    public static bool IsKnown(string name) => All.Contains(name, StringComparer.Ordinal);

    /// <summary>The event a run's final status sends; null for a run still running.</summary>
    public static string? ForRun(string status) => status switch
    {
        RunStatuses.Succeeded => RunSucceeded,
        RunStatuses.Failed => RunFailed,
        RunStatuses.Canceled => RunCanceled,
        _ => null,
    };

    /// <summary>The event a deployment's outcome sends; null for one still pending.</summary>
    public static string? ForDeployment(string outcome) => outcome switch
    {
        DeploymentOutcomes.Live => DeployLive,
        DeploymentOutcomes.Failed => DeployFailed,
        _ => null,
    };

    /// <summary>The body of a run's event, made once when the event is recorded and sent unchanged on every attempt.</summary>
    public static string RunPayload(string type, RunRecord run) =>
        Payload(type, run.FinishedAt ?? run.StartedAt, JsonSerializer.SerializeToNode(Json.Run(run), ApiJson.Default.Run));

    /// <summary>The body of a deployment's event, likewise.</summary>
    public static string DeploymentPayload(string type, DeploymentRecord deployment) =>
        Payload(type, deployment.FinishedAt ?? deployment.CreatedAt, JsonSerializer.SerializeToNode(Json.Deployment(deployment), ApiJson.Default.Deployment));

    private static string Payload(string type, DateTimeOffset at, JsonNode? data) => new JsonObject
    {
        ["type"] = type,
        ["timestamp"] = at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
        ["data"] = data,
    }.ToJsonString();
}
