using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Skiff.Server.Hosting;

namespace Skiff.Server.Ui;

/// <summary>
/// The web UI's sign-in. A browser that gave the server's token gets an HttpOnly, SameSite=Strict cookie
/// that stands for it: <c>v1.EXPIRES.NONCE.MAC</c>, the MAC an HMAC-SHA256 keyed with the token, so every
/// server that holds the token file checks it without shared state, the token itself never sits in the
/// browser, and a new token ends every session. A token made by <c>skiff tokens create</c> signs in too: its
/// cookie names it and is keyed with its hash as well, so revoking it ends its sessions at their next request,
/// and what it may do is its role's (Hosting/Authorization.cs). Requests that change something also carry the session's
/// CSRF token in <c>X-Skiff-Csrf</c>: an HMAC of the session's nonce under the token (the "signed
/// double-submit" pattern; the page learns it from <c>GET /ui/session</c>, which another origin cannot read),
/// and an <c>Origin</c>, when the browser sends one, must be this server's.
/// </summary>
internal static class UiSession
{
    public const string CookieName = "skiff_session";
    public const string CsrfHeader = "X-Skiff-Csrf";

    /// <summary>How long a sign-in lasts; a working week, so a tab kept open stays useful.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromDays(7);

    public static bool HasCookie(HttpContext context) => context.Request.Cookies.ContainsKey(CookieName);

    /// <summary>
    /// Signs the browser in: sets the cookie and returns the session's CSRF token. <paramref name="key"/> signs the
    /// session: the server's token for the server's own (<c>v1</c> cookies), and for a created token
    /// <paramref name="tokenName"/> the key <see cref="AccessTokens.SessionKeyAsync"/> gives (<c>v2.EXPIRES.NONCE.NAME.MAC</c>).
    /// </summary>
    public static string SignIn(HttpContext context, string key, string? tokenName, TimeProvider time)
    {
        var expires = time.GetUtcNow() + Lifetime;
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var payload = tokenName is null
            ? $"v1.{expires.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}.{nonce}"
            : $"v2.{expires.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}.{nonce}.{tokenName}";
        context.Response.Cookies.Append(CookieName, $"{payload}.{Mac(key, "session", payload)}", new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = context.Request.IsHttps,
            Path = "/",
            Expires = expires,
        });
        return Mac(key, "csrf", nonce);
    }

    public static void SignOut(HttpContext context) =>
        context.Response.Cookies.Delete(CookieName, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/" });

    /// <summary>The caller and CSRF token of the request's session, or null when it has no valid session.</summary>
    public static async Task<(Caller Caller, string Csrf)?> ReadAsync(HttpContext context, AccessTokens tokens, TimeProvider time, CancellationToken cancellationToken)
    {
        var cookie = context.Request.Cookies[CookieName];
        var parts = cookie?.Split('.');
        if (parts is not { Length: 4 or 5 } || parts[0] != (parts.Length == 4 ? "v1" : "v2")
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var expires)
            || expires < time.GetUtcNow().ToUnixTimeSeconds())
        {
            return null;
        }

        Caller caller;
        string key;
        if (parts.Length == 4)
        {
            (caller, key) = (new Caller(Authorization.ServerTokenName, ApiRole.Admin, []), tokens.ServerToken);
        }
        else if (await tokens.SessionKeyAsync(parts[3], cancellationToken).ConfigureAwait(false) is { } named)
        {
            (caller, key) = named;
        }
        else
        {
            return null;
        }

        var payload = string.Join('.', parts[..^1]);
        return Same(Mac(key, "session", payload), parts[^1]) ? (caller, Mac(key, "csrf", parts[2])) : null;
    }

    /// <summary>
    /// The caller of a request authenticated by the cookie, or null after answering 401 (no valid session) or 403
    /// (an action without the session's CSRF token, or from another origin). What the caller's role allows is
    /// checked after, as for a bearer token.
    /// </summary>
    public static async Task<Caller?> AuthorizeAsync(HttpContext context, AccessTokens tokens, TimeProvider time, CancellationToken cancellationToken)
    {
        if (await ReadAsync(context, tokens, time, cancellationToken).ConfigureAwait(false) is not { } session)
        {
            SignOut(context);
            await RefuseAsync(context, StatusCodes.Status401Unauthorized, "the web UI session has ended or is not valid (was its token revoked, or the server's token changed?); sign in again with a token.").ConfigureAwait(false);
            return null;
        }

        // SameSite=Strict ignores the port, so a page served from another port of this host (or a sibling subdomain)
        // still sends the cookie: a request from another origin is refused whatever its method, and the agent channel's
        // WebSocket (a GET the browser sends with the cookie and its Origin) never takes a session at all.
        if (context.WebSockets.IsWebSocketRequest)
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, "a web UI session is never good for a WebSocket; agents connect with a bearer token. Nothing was changed.").ConfigureAwait(false);
            return null;
        }

        if (!FromThisOrigin(context))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, $"this request came from another site ({context.Request.Headers.Origin}); a web UI session is good only for this server's own pages. Nothing was changed.").ConfigureAwait(false);
            return null;
        }

        var method = context.Request.Method;
        var changes = !(HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method));
        if (changes && (!FromThisOrigin(context) || !Same(session.Csrf, context.Request.Headers[CsrfHeader].ToString())))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, $"this action came without the page's {CsrfHeader} header or from another site; nothing was changed. Reload the page and try again.").ConfigureAwait(false);
            return null;
        }

        return session.Caller;
    }

    /// <summary>Whether the request's Origin (when the browser sent one) is this server.</summary>
    public static bool FromThisOrigin(HttpContext context)
    {
        var origin = context.Request.Headers.Origin.ToString();
        return origin.Length == 0
            || string.Equals(origin, $"{context.Request.Scheme}://{context.Request.Host}", StringComparison.OrdinalIgnoreCase);
    }

    private static Task RefuseAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new JsonObject { ["error"] = message });
    }

    private static string Mac(string token, string purpose, string value) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(token), Encoding.UTF8.GetBytes($"skiff-ui/{purpose}\n{value}")));

    private static bool Same(string expected, string given) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(given));
}
