using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Skiff.Server.Api;
using Skiff.Server.Hosting;

namespace Skiff.Server.Ui;

/// <summary>
/// The web UI: a page at <c>/</c> and its scripts and styles under <c>/ui/</c>, all embedded in this assembly
/// (so they ship with the server and the <c>skiff</c> tool, and nothing comes from another host), plus
/// sign-in and sign-out. The page reads and acts through <c>/api/v1</c> like the CLI does.
/// </summary>
internal static class UiEndpoints
{
    private const string ResourcePrefix = "skiff-ui/";

    // The page may load only what this server serves: no CDN, no inline script, no framing.
    private const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
        [".png"] = "image/png",
    };

    /// <summary>Maps the page, its files and sign-in, all without a token: they hold no data, and sign-in happens here.</summary>
    public static void Map(IEndpointRouteBuilder root, AccessTokens tokens, TimeProvider time)
    {
        var assets = LoadAssets();
        var app = root.MapGroup("").AllowAnonymous();
        app.MapGet("/", (HttpContext context) => Serve(context, assets, "index.html"));
        // Static files, not an API: left out of the OpenAPI document.
        app.MapGet("/ui/assets/{*file}", (HttpContext context, string file) => Serve(context, assets, file)).ExcludeFromDescription();

        app.MapGet("/ui/session", async (HttpContext context, CancellationToken cancellationToken) =>
        {
            var session = await UiSession.ReadAsync(context, tokens, time, cancellationToken).ConfigureAwait(false);
            context.Response.Headers.CacheControl = "no-store";
            return Results.Json(new JsonObject
            {
                ["signed_in"] = session is not null,
                ["csrf"] = session?.Csrf,
                ["token"] = session?.Caller.Token,
                ["role"] = session is { } s ? RequiredRole.Name(s.Caller.Role) : null,
                ["locations"] = session is { } scoped ? Locations(scoped.Caller) : null,
            });
        });

        app.MapPost("/ui/session", async (HttpContext context, CancellationToken cancellationToken) =>
        {
            if (!UiSession.FromThisOrigin(context))
            {
                return Results.Json(new JsonObject { ["error"] = "sign in from this server's own page." }, statusCode: StatusCodes.Status403Forbidden);
            }

            var body = await Requests.ReadAsync(context.Request, 64 * 1024, Skiff.Client.Api.ApiJson.Default.JsonObject, cancellationToken).ConfigureAwait(false);
            var given = (body["token"] is System.Text.Json.Nodes.JsonValue value && value.TryGetValue<string>(out var text) ? text : null)?.Trim();
            var caller = await tokens.ResolveAsync(given, cancellationToken).ConfigureAwait(false);
            var named = caller is null || caller.Token == Authorization.ServerTokenName ? null : await tokens.SessionKeyAsync(caller.Token, cancellationToken).ConfigureAwait(false);
            if (string.IsNullOrEmpty(given))
            {
                return Results.Json(
                    new JsonObject { ["error"] = "no token was given: paste the token from the client.json that `skiff up` wrote (it prints where), or one made with `skiff tokens create`." },
                    statusCode: StatusCodes.Status400BadRequest);
            }

            if (caller is null || (caller.Token != Authorization.ServerTokenName && named is null))
            {
                return Results.Json(
                    new JsonObject { ["error"] = "that is not this server's token, nor one made for it (or it was revoked); `skiff up` prints where it wrote client.json, whose \"token\" it is, and `skiff tokens create` makes others." },
                    statusCode: StatusCodes.Status401Unauthorized);
            }

            var csrf = named is { } n ? UiSession.SignIn(context, n.Key, caller.Token, time) : UiSession.SignIn(context, tokens.ServerToken, null, time);
            context.Response.Headers.CacheControl = "no-store";
            return Results.Json(new JsonObject { ["signed_in"] = true, ["csrf"] = csrf, ["token"] = caller.Token, ["role"] = RequiredRole.Name(caller.Role), ["locations"] = Locations(caller) });
        });

        app.MapPost("/ui/session/end", (HttpContext context) =>
        {
            if (UiSession.FromThisOrigin(context))
            {
                UiSession.SignOut(context);
            }

            return Results.Json(new JsonObject { ["signed_in"] = false });
        });
    }

    /// <summary>The locations a token is limited to (empty: every one), so pages offer only what it may see and do.</summary>
    private static JsonArray Locations(Caller caller) => new([.. caller.Locations.Select(l => (JsonNode)l)]);

    private static IResult Serve(HttpContext context, Dictionary<string, Asset> assets, string name)
    {
        if (!assets.TryGetValue(name, out var asset))
        {
            return Results.NotFound();
        }

        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        // Revalidated on every load, so a server upgrade is seen at once; unchanged files cost a 304.
        headers.CacheControl = "no-cache";
        headers.ETag = asset.ETag;
        if (context.Request.Headers.IfNoneMatch == asset.ETag)
        {
            return Results.StatusCode(StatusCodes.Status304NotModified);
        }

        return Results.Bytes(asset.Bytes, asset.ContentType);
    }

    private static Dictionary<string, Asset> LoadAssets()
    {
        var assembly = typeof(UiEndpoints).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var bytes = copy.ToArray();
            var name = resource[ResourcePrefix.Length..].Replace('\\', '/');
            assets[name] = new Asset(
                bytes,
                ContentTypes.GetValueOrDefault(Path.GetExtension(name), "application/octet-stream"),
                $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))[..16]}\"");
        }

        return assets;
    }

    private sealed record Asset(byte[] Bytes, string ContentType, string ETag);
}
