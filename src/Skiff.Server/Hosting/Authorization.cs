using System.Text.Json;
using Skiff.Client.Api;
using Skiff.Server.Metadata;
using Skiff.Server.Ui;

namespace Skiff.Server.Hosting;

/// <summary>
/// What a token may do (docs/api.md, "Tokens and roles"). Ordered: each role can do everything the ones
/// below it can. <c>deploy</c> includes <c>run</c> because a deploy pipeline commonly runs a smoke job right
/// after it deploys, and a deploy can change what a run does anyway.
/// </summary>
internal enum ApiRole
{
    /// <summary>Every GET: locations, history, runs and their events, agents.</summary>
    Read,

    /// <summary>Start and cancel runs.</summary>
    Run,

    /// <summary>Upload blobs, deploy, roll back.</summary>
    Deploy,

    /// <summary>Tokens, the audit log, garbage collection, draining agents, agent connections.</summary>
    Admin,
}

/// <summary>Which location a call acts on or reads, as a location-scoped token is checked against it.</summary>
internal enum LocationScope
{
    /// <summary>No location in particular, and nothing a location-scoped token must be kept from: blobs by digest, the list of locations.</summary>
    Any,

    /// <summary>The whole platform (gc, tokens, agents): a location-scoped token may never.</summary>
    Platform,

    /// <summary>The <c>{name}</c> of the route.</summary>
    Route,

    /// <summary>The <c>location</c> query parameter; a location-scoped token must give one.</summary>
    Query,

    /// <summary>The <c>location</c> field of the JSON body.</summary>
    Body,

    /// <summary>The location of the run <c>{id}</c>.</summary>
    Run,

    /// <summary>The location of the deployment <c>{id}</c>.</summary>
    Deployment,
}

/// <summary>Endpoint metadata: the role a call needs and where its location comes from.</summary>
internal sealed record RequiredRole(ApiRole Role, LocationScope Scope)
{
    /// <summary>For the OpenAPI document and docs/api.md.</summary>
    public string Describe() => Scope switch
    {
        LocationScope.Platform => $"Needs a `{Name(Role)}` token for every location.",
        LocationScope.Any => $"Needs a `{Name(Role)}` token.",
        _ => $"Needs a `{Name(Role)}` token for the location.",
    };

    public static string Name(ApiRole role) => role.ToString().ToLowerInvariant();
}

/// <summary>Endpoint metadata: a change recorded in the audit log when it succeeds. Target and detail are <c>route:NAME</c>, <c>body:FIELD</c> or <c>answer:FIELD</c>.</summary>
internal sealed record AuditedAction(string Action, string? Target = null, string? Detail = null);

/// <summary>Who is calling: the token's name, its role, and the locations it is limited to (empty: every one).</summary>
internal sealed record Caller(string Token, ApiRole Role, IReadOnlyList<string> Locations)
{
    public bool Covers(string location) => Locations.Count == 0 || Locations.Contains(location, StringComparer.Ordinal);

    public string Describe() => $"token '{Token}' ({RequiredRole.Name(Role)}{(Locations.Count == 0 ? "" : ", for " + string.Join(", ", Locations))})";
}

/// <summary>
/// The middleware that authenticates every call but the anonymous ones, checks its role and location against
/// the endpoint's <see cref="RequiredRole"/>, and writes the audit log entry of a change that succeeded.
/// </summary>
internal sealed class Authorization(AccessTokens tokens, IMetadataStore store, long maxJsonBytes, TimeProvider time)
{
    /// <summary>The name the data folder's token goes by in the audit log and in <c>skiff tokens list</c>.</summary>
    public const string ServerTokenName = "server";

    private const string CallerKey = "skiff.caller";

    // One table for every call, kept apart from the endpoints themselves so the roles can be read (and reviewed)
    // side by side; applied to the endpoints as metadata by Declare, from which the OpenAPI document says them and
    // a test checks that no endpoint is left without one.
    private static readonly Dictionary<string, (RequiredRole Role, AuditedAction? Audit)> Table = new(StringComparer.Ordinal)
    {
        ["GET /api/v1/agents/connect"] = (new(ApiRole.Admin, LocationScope.Platform), null),
        ["POST /api/v1/blobs/missing"] = (new(ApiRole.Deploy, LocationScope.Any), null),
        ["PUT /api/v1/blobs/{digest}"] = (new(ApiRole.Deploy, LocationScope.Any), null),
        ["POST /api/v1/blobs/{digest}/commit"] = (new(ApiRole.Deploy, LocationScope.Any), null),
        ["GET /api/v1/blobs/{digest}"] = (new(ApiRole.Read, LocationScope.Any), null),
        // It names the releases and locations damage affects, of every location: not for a location-scoped token.
        ["GET /api/v1/blobs/scrub"] = (new(ApiRole.Read, LocationScope.Platform), null),
        ["POST /api/v1/deployments"] = (new(ApiRole.Deploy, LocationScope.Body), new("deploy", "body:release", "answer:deployment")),
        ["GET /api/v1/deployments/{id}"] = (new(ApiRole.Read, LocationScope.Deployment), null),
        ["GET /api/v1/locations"] = (new(ApiRole.Read, LocationScope.Any), null),
        // A location's settings change how its runs run, as a deploy's memory limit does.
        ["PATCH /api/v1/locations/{name}"] = (new(ApiRole.Deploy, LocationScope.Route), new("location.set", "route:name", "answer:changed")),
        ["GET /api/v1/locations/{name}/jobs"] = (new(ApiRole.Read, LocationScope.Route), null),
        ["GET /api/v1/locations/{name}/deployments"] = (new(ApiRole.Read, LocationScope.Route), null),
        ["GET /api/v1/locations/{name}/health"] = (new(ApiRole.Read, LocationScope.Route), null),
        ["POST /api/v1/locations/{name}/rollback"] = (new(ApiRole.Deploy, LocationScope.Route), new("rollback", "body:deployment", "answer:deployment")),
        // Names, plain values and who set what: a read token sees what a location runs with, but never a secret's value.
        ["GET /api/v1/locations/{name}/env"] = (new(ApiRole.Read, LocationScope.Route), null),
        // Deploy, as a deploy is: a change of environment changes what the location's code does.
        ["POST /api/v1/locations/{name}/env"] = (new(ApiRole.Deploy, LocationScope.Route), new("env", null, "answer:change")),
        ["POST /api/v1/runs"] = (new(ApiRole.Run, LocationScope.Body), new("run", "body:job", "answer:run")),
        ["GET /api/v1/runs"] = (new(ApiRole.Read, LocationScope.Query), null),
        ["GET /api/v1/runs/{id}"] = (new(ApiRole.Read, LocationScope.Run), null),
        ["GET /api/v1/runs/{id}/events"] = (new(ApiRole.Read, LocationScope.Run), null),
        ["POST /api/v1/runs/{id}/cancel"] = (new(ApiRole.Run, LocationScope.Run), new("cancel", "route:id")),
        ["GET /api/v1/agents"] = (new(ApiRole.Read, LocationScope.Any), null),
        ["POST /api/v1/agents/{name}/drain"] = (new(ApiRole.Admin, LocationScope.Platform), new("agent.drain", "route:name")),
        ["POST /api/v1/agents/{name}/undrain"] = (new(ApiRole.Admin, LocationScope.Platform), new("agent.undrain", "route:name")),
        ["POST /api/v1/gc"] = (new(ApiRole.Admin, LocationScope.Platform), new("gc", null, "answer:deleted")),
        ["GET /api/v1/overview"] = (new(ApiRole.Read, LocationScope.Any), null),
        ["GET /api/v1/runs/search"] = (new(ApiRole.Read, LocationScope.Query), null),
        ["GET /api/v1/releases/{from}/diff/{to}"] = (new(ApiRole.Read, LocationScope.Any), null),
        ["GET /api/v1/runs/{id}/stream"] = (new(ApiRole.Read, LocationScope.Run), null),
        ["GET /api/v1/tokens"] = (new(ApiRole.Admin, LocationScope.Platform), null),
        ["POST /api/v1/tokens"] = (new(ApiRole.Admin, LocationScope.Platform), new("token.create", "body:name", "answer:role")),
        ["DELETE /api/v1/tokens/{name}"] = (new(ApiRole.Admin, LocationScope.Platform), new("token.revoke", "route:name")),
        ["GET /api/v1/audit"] = (new(ApiRole.Admin, LocationScope.Platform), null),
        ["GET /api/v1/access/deploy"] = (new(ApiRole.Deploy, LocationScope.Query), null),
        // A subscription sees events of every location it is not limited to, and its URL may carry a receiver's secret.
        ["POST /api/v1/webhooks"] = (new(ApiRole.Admin, LocationScope.Platform), new("webhook.create", "body:url", "answer:id")),
        ["GET /api/v1/webhooks"] = (new(ApiRole.Admin, LocationScope.Platform), null),
        ["DELETE /api/v1/webhooks/{id}"] = (new(ApiRole.Admin, LocationScope.Platform), new("webhook.remove", "route:id")),
        // What was sent where and how the receiver answered: for anyone who reads the whole platform, as the scrub report is.
        ["GET /api/v1/webhooks/deliveries"] = (new(ApiRole.Read, LocationScope.Platform), null),
        ["GET /api/v1/schedules"] = (new(ApiRole.Read, LocationScope.Query), null),
        // Pausing a schedule decides which runs start, as starting and canceling runs does.
        ["POST /api/v1/schedules/{name}/{job}/pause"] = (new(ApiRole.Run, LocationScope.Route), new("schedule.pause", "route:job")),
        ["POST /api/v1/schedules/{name}/{job}/resume"] = (new(ApiRole.Run, LocationScope.Route), new("schedule.resume", "route:job")),
        // Prometheus's scrape: figures of every location, so not for a location-scoped token (docs/metrics.md).
        ["GET /metrics"] = (new(ApiRole.Read, LocationScope.Platform), null),
    };

    /// <summary>A group convention: gives each endpoint its <see cref="RequiredRole"/> (and <see cref="AuditedAction"/>) from the table.</summary>
    public static void Declare(EndpointBuilder endpoint)
    {
        if (endpoint is not RouteEndpointBuilder route)
        {
            return;
        }

        foreach (var method in endpoint.Metadata.OfType<IHttpMethodMetadata>().SelectMany(m => m.HttpMethods).ToList())
        {
            if (Table.TryGetValue($"{method} /{route.RoutePattern.RawText?.TrimStart('/')}", out var entry))
            {
                endpoint.Metadata.Add(entry.Role);
                if (entry.Audit is not null)
                {
                    endpoint.Metadata.Add(entry.Audit);
                }
            }
        }
    }

    /// <summary>The caller of a request that passed <see cref="HandleAsync"/>.</summary>
    public static Caller CallerOf(HttpContext context) =>
        context.Items[CallerKey] as Caller ?? throw new InvalidOperationException("the request was not authorized.");

    /// <summary>The caller of a request, or null before (or without) <see cref="HandleAsync"/>: for logs of failed requests.</summary>
    public static Caller? TryCallerOf(HttpContext context) => context.Items.TryGetValue(CallerKey, out var caller) ? caller as Caller : null;

    public async Task HandleAsync(HttpContext context, Func<Task> next)
    {
        // Routing has chosen the endpoint by now; the few marked anonymous are the ones the OpenAPI document
        // shows without the bearer requirement, so the two cannot disagree.
        var endpoint = context.GetEndpoint();
        if (endpoint?.Metadata.GetMetadata<Microsoft.AspNetCore.Authorization.IAllowAnonymous>() is not null)
        {
            await next().ConfigureAwait(false);
            return;
        }

        var header = context.Request.Headers.Authorization.ToString();
        var given = header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..].Trim() : null;
        Caller? caller;
        if (given is null && UiSession.HasCookie(context))
        {
            // The web UI: its cookie stands for the token, and its actions carry a CSRF token (Ui/UiSession.cs).
            caller = await UiSession.AuthorizeAsync(context, tokens, time, context.RequestAborted).ConfigureAwait(false);
            if (caller is null)
            {
                return;
            }
        }
        else
        {
            caller = await tokens.ResolveAsync(given, context.RequestAborted).ConfigureAwait(false);
            if (caller is null)
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await context.Response.WriteAsJsonAsync(
                    new ApiError(given is null
                        ? "this server needs a bearer token: pass --token, set SKIFF_TOKEN, or use the client.json that `skiff up` wrote. In a browser, sign in to the web UI at / with a token."
                        : "the bearer token is wrong or was revoked; nothing was changed."),
                    ApiJson.Default.ApiError).ConfigureAwait(false);
                return;
            }
        }

        // An endpoint nobody gave a role needs admin: forgetting to declare one must not open it, and a test checks
        // that every endpoint declares one. What is not a route endpoint only refuses (routing's 405 and 415 answers;
        // a path that matched nothing has no endpoint and answers 404), so any valid token may hear that.
        var required = endpoint is RouteEndpoint ? endpoint.Metadata.GetMetadata<RequiredRole>() ?? new RequiredRole(ApiRole.Admin, LocationScope.Platform) : null;
        var audit = endpoint?.Metadata.GetMetadata<AuditedAction>();
        // Found only when something needs it: a location-scoped caller, or a change to record.
        var location = required is not null && (caller.Locations.Count > 0 || audit is not null)
            ? await LocationOfAsync(context, required.Scope).ConfigureAwait(false)
            : default;
        if (required is not null && Refusal(caller, required, location, HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method)) is { } refusal)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.Response.WriteAsJsonAsync(new ApiError(refusal), ApiJson.Default.ApiError).ConfigureAwait(false);
            return;
        }

        context.Items[CallerKey] = caller;
        if (audit is null)
        {
            await next().ConfigureAwait(false);
            return;
        }

        var target = await PartAsync(context, audit.Target, answer: null).ConfigureAwait(false);
        var answer = new AnswerCopy(context.Response.Body);
        context.Response.Body = answer;
        try
        {
            await next().ConfigureAwait(false);
        }
        finally
        {
            context.Response.Body = answer.Inner;
        }

        if (context.Response.StatusCode is >= 200 and < 300)
        {
            // Written once the change is made, with the token's name: what the client says of itself ("who") is
            // kept on the deployment as its declared author, but the log is the server's own account.
            var entry = new AuditRecord(time.GetUtcNow(), caller.Token, audit.Action, location.Location, target, await PartAsync(context, audit.Detail, answer).ConfigureAwait(false));
            try
            {
                await store.RecordAuditAsync(entry, CancellationToken.None).ConfigureAwait(false);
            }
            catch (MetadataStoreException)
            {
                // The change is made and its answer is on its way; throwing now would cut the answer off and make
                // the caller believe it failed. The entry is lost instead (docs/api.md says so).
            }
        }
    }

    /// <summary>Why <paramref name="caller"/> may not make this call, as a message that says what would do; null when it may.</summary>
    private static string? Refusal(Caller caller, RequiredRole required, ScopedLocation location, bool reads)
    {
        // A refused read changed nothing by its nature; saying so is for refused changes.
        var unchanged = reads ? "" : " Nothing was changed.";
        if (caller.Role < required.Role)
        {
            return $"this call needs a token with the role '{RequiredRole.Name(required.Role)}' or higher; {caller.Describe()} has '{RequiredRole.Name(caller.Role)}'.{unchanged} Ask an admin for a token with that role (`skiff tokens create NAME --role {RequiredRole.Name(required.Role)}`).";
        }

        if (caller.Locations.Count == 0)
        {
            return null;
        }

        return required.Scope switch
        {
            LocationScope.Any => null,
            LocationScope.Platform => $"this call covers the whole platform and needs a token for every location; {caller.Describe()} is limited to {string.Join(", ", caller.Locations)}.{unchanged} Ask an admin for a token made without --location (`skiff tokens create NAME --role {RequiredRole.Name(required.Role)}`).",
            _ when location.Location is null && location.Unknown => null, // the run or deployment does not exist: the endpoint answers 404
            _ when location.Location is null => required.Scope is LocationScope.Query
                ? $"{caller.Describe()} may only read its own locations: name one of them ({string.Join(", ", caller.Locations)}), as in `skiff runs {caller.Locations[0]}` (the API's ?location=)."
                : $"{caller.Describe()} may only act on its own locations, and this request names none (or more than one); name one of {string.Join(", ", caller.Locations)}.{unchanged}",
            _ when !caller.Covers(location.Location!) => $"{caller.Describe()} may not act on or read location '{location.Location}'; it is limited to {string.Join(", ", caller.Locations)}.{unchanged} Use a token for '{location.Location}'.",
            _ => null,
        };
    }

    /// <summary>The location a call names. Unknown: it names a run or deployment that is not recorded.</summary>
    private readonly record struct ScopedLocation(string? Location, bool Unknown = false);

    private async Task<ScopedLocation> LocationOfAsync(HttpContext context, LocationScope scope)
    {
        var cancellationToken = context.RequestAborted;
        switch (scope)
        {
            case LocationScope.Route:
                return new(context.Request.RouteValues["name"] as string);
            case LocationScope.Query:
                var query = context.Request.Query["location"];
                return new(query.Count == 1 && !string.IsNullOrWhiteSpace(query[0]) ? query[0]!.Trim() : null);
            case LocationScope.Body:
                return new(await BodyFieldAsync(context, "location").ConfigureAwait(false));
            case LocationScope.Run:
                var run = await store.GetRunAsync(context.Request.RouteValues["id"] as string ?? "", cancellationToken).ConfigureAwait(false);
                return new(run?.Location, Unknown: run is null);
            case LocationScope.Deployment:
                var deployment = await store.GetDeploymentAsync(context.Request.RouteValues["id"] as string ?? "", cancellationToken).ConfigureAwait(false);
                return new(deployment?.Location, Unknown: deployment is null);
            default:
                return new(null);
        }
    }

    private async Task<string?> PartAsync(HttpContext context, string? source, AnswerCopy? answer)
    {
        var (kind, name) = source?.Split(':') is [var k, var n] ? (k, n) : ("", "");
        return kind switch
        {
            "route" => context.Request.RouteValues[name]?.ToString(),
            "body" => await BodyFieldAsync(context, name).ConfigureAwait(false),
            "answer" => answer?.Field(name),
            _ => null,
        };
    }

    /// <summary>
    /// A string field of the JSON body, read from a buffered copy the endpoint reads again. Null when the body is
    /// not a JSON object, or has the field other than exactly once as a string: System.Text.Json takes the last of
    /// duplicated fields, so a body naming two locations must not be judged by either.
    /// </summary>
    private async Task<string?> BodyFieldAsync(HttpContext context, string field)
    {
        var request = context.Request;
        if (request.ContentLength is 0 || request.ContentLength > maxJsonBytes)
        {
            return null;
        }

        // Kept for the endpoint to read again; read here only up to the endpoint's own limit, past which it refuses the body.
        request.EnableBuffering(bufferThreshold: 64 * 1024);
        try
        {
            request.Body.Position = 0;
            using var body = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await request.Body.ReadAsync(chunk, context.RequestAborted).ConfigureAwait(false)) > 0)
            {
                if (body.Length + read > maxJsonBytes)
                {
                    return null;
                }

                body.Write(chunk, 0, read);
            }

            using var document = JsonDocument.Parse(body.ToArray());
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            var values = document.RootElement.EnumerateObject().Where(p => p.NameEquals(field)).ToList();
            return values is [{ Value.ValueKind: JsonValueKind.String } only] ? only.Value.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
        finally
        {
            request.Body.Position = 0;
        }
    }

    /// <summary>Passes the answer through, keeping its first bytes for the audit log's detail.</summary>
    private sealed class AnswerCopy(Stream inner) : Stream
    {
        private const int Kept = 64 * 1024;
        private readonly MemoryStream _copy = new();

        public Stream Inner => inner;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public string? Field(string name)
        {
            try
            {
                using var document = JsonDocument.Parse(_copy.ToArray());
                return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty(name, out var value)
                    ? value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText()
                    : null;
            }
            catch (JsonException)
            {
                return null;
            }
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Keep(buffer.AsSpan(offset, count));
            inner.Write(buffer, offset, count);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Keep(buffer.Span);
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        private void Keep(ReadOnlySpan<byte> bytes)
        {
            if (_copy.Length < Kept)
            {
                _copy.Write(bytes[..(int)Math.Min(bytes.Length, Kept - _copy.Length)]);
            }
        }
    }
}
