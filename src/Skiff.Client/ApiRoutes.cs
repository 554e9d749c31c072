namespace Skiff.Client;

/// <summary>One call of the HTTP API: its method and its route as the OpenAPI document names it.</summary>
internal sealed record ApiRoute(string Method, string Template)
{
    /// <summary>
    /// The route relative to the server's URL, with <paramref name="values"/> in its <c>{…}</c> places in order,
    /// escaped (colons stay: digests travel as <c>sha256:…</c>).
    /// </summary>
    public string Path(params string[] values)
    {
        var path = Template.TrimStart('/');
        foreach (var value in values)
        {
            var start = path.IndexOf('{', StringComparison.Ordinal);
            var end = path.IndexOf('}', start + 1);
            path = string.Concat(path.AsSpan(0, start), Uri.EscapeDataString(value).Replace("%3A", ":", StringComparison.Ordinal), path.AsSpan(end + 1));
        }

        return path;
    }
}

/// <summary>Every call <see cref="SkiffClient"/> makes; a test checks each against the server's OpenAPI document.</summary>
internal static class ApiRoutes
{
    public static readonly ApiRoute MissingBlobs = new("POST", "/api/v1/blobs/missing");
    public static readonly ApiRoute PutBlob = new("PUT", "/api/v1/blobs/{digest}");
    public static readonly ApiRoute CommitBlob = new("POST", "/api/v1/blobs/{digest}/commit");
    public static readonly ApiRoute Deploy = new("POST", "/api/v1/deployments");
    public static readonly ApiRoute Deployment = new("GET", "/api/v1/deployments/{id}");
    public static readonly ApiRoute Locations = new("GET", "/api/v1/locations");
    public static readonly ApiRoute SetLocation = new("PATCH", "/api/v1/locations/{name}");
    public static readonly ApiRoute Jobs = new("GET", "/api/v1/locations/{name}/jobs");
    public static readonly ApiRoute History = new("GET", "/api/v1/locations/{name}/deployments");
    public static readonly ApiRoute Health = new("GET", "/api/v1/locations/{name}/health");
    public static readonly ApiRoute Rollback = new("POST", "/api/v1/locations/{name}/rollback");
    public static readonly ApiRoute StartRun = new("POST", "/api/v1/runs");
    public static readonly ApiRoute Runs = new("GET", "/api/v1/runs");
    public static readonly ApiRoute RunEvents = new("GET", "/api/v1/runs/{id}/events");
    public static readonly ApiRoute CancelRun = new("POST", "/api/v1/runs/{id}/cancel");
    public static readonly ApiRoute CollectGarbage = new("POST", "/api/v1/gc");
    public static readonly ApiRoute Agents = new("GET", "/api/v1/agents");
    public static readonly ApiRoute DrainAgent = new("POST", "/api/v1/agents/{name}/drain");
    public static readonly ApiRoute UndrainAgent = new("POST", "/api/v1/agents/{name}/undrain");
    public static readonly ApiRoute CreateToken = new("POST", "/api/v1/tokens");
    public static readonly ApiRoute Tokens = new("GET", "/api/v1/tokens");
    public static readonly ApiRoute RevokeToken = new("DELETE", "/api/v1/tokens/{name}");
    public static readonly ApiRoute Audit = new("GET", "/api/v1/audit");
    public static readonly ApiRoute MayDeploy = new("GET", "/api/v1/access/deploy");
    public static readonly ApiRoute Scrub = new("GET", "/api/v1/blobs/scrub");
    public static readonly ApiRoute CreateWebhook = new("POST", "/api/v1/webhooks");
    public static readonly ApiRoute Webhooks = new("GET", "/api/v1/webhooks");
    public static readonly ApiRoute RemoveWebhook = new("DELETE", "/api/v1/webhooks/{id}");
    public static readonly ApiRoute WebhookDeliveries = new("GET", "/api/v1/webhooks/deliveries");
    public static readonly ApiRoute Schedules = new("GET", "/api/v1/schedules");
    public static readonly ApiRoute PauseSchedule = new("POST", "/api/v1/schedules/{name}/{job}/pause");
    public static readonly ApiRoute ResumeSchedule = new("POST", "/api/v1/schedules/{name}/{job}/resume");
    public static readonly ApiRoute Env = new("GET", "/api/v1/locations/{name}/env");
    public static readonly ApiRoute ChangeEnv = new("POST", "/api/v1/locations/{name}/env");

    public static IReadOnlyList<ApiRoute> All { get; } =
    [
        MissingBlobs, PutBlob, CommitBlob, Deploy, Deployment, Locations, SetLocation, Jobs, History, Health, Rollback, StartRun, Runs, RunEvents, CancelRun, CollectGarbage, Agents, DrainAgent, UndrainAgent, CreateToken, Tokens, RevokeToken, Audit, MayDeploy, Scrub,
        CreateWebhook, Webhooks, RemoveWebhook, WebhookDeliveries, Schedules, PauseSchedule, ResumeSchedule, Env, ChangeEnv,
    ];
}
