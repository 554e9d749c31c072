using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Skiff.Server.Ui;

/// <summary>
/// The web UI's sign-in. A browser that gave the server's token gets an HttpOnly, SameSite=Strict cookie
/// that stands for it: <c>v1.EXPIRES.NONCE.MAC</c>, the MAC an HMAC-SHA256 keyed with the token, so every
/// server that holds the token file checks it without shared state, the token itself never sits in the
/// browser, and a new token ends every session. Requests that change something also carry the session's
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

    /// <summary>Signs the browser in: sets the cookie and returns the session's CSRF token.</summary>
    public static string SignIn(HttpContext context, string token, TimeProvider time)
    {
        var expires = time.GetUtcNow() + Lifetime;
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var payload = $"v1.{expires.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}.{nonce}";
        context.Response.Cookies.Append(CookieName, $"{payload}.{Mac(token, "session", payload)}", new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = context.Request.IsHttps,
            Path = "/",
            Expires = expires,
        });
        return Mac(token, "csrf", nonce);
    }

    public static void SignOut(HttpContext context) =>
        context.Response.Cookies.Delete(CookieName, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/" });

    /// <summary>The CSRF token of the request's session, or null when it has no valid session.</summary>
    public static string? CsrfFor(HttpContext context, string token, TimeProvider time)
    {
        var cookie = context.Request.Cookies[CookieName];
        var parts = cookie?.Split('.');
        if (parts is not { Length: 4 } || parts[0] != "v1"
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var expires)
            || expires < time.GetUtcNow().ToUnixTimeSeconds())
        {
            return null;
        }

        var payload = string.Join('.', parts[..3]);
        return Same(Mac(token, "session", payload), parts[3]) ? Mac(token, "csrf", parts[2]) : null;
    }

    /// <summary>
    /// Lets a request authenticated by the cookie through to <paramref name="next"/>, or answers 401 (no valid
    /// session) or 403 (an action without the session's CSRF token, or from another origin).
    /// </summary>
    public static async Task AuthorizeAsync(HttpContext context, string token, TimeProvider time, Func<Task> next)
    {
        var csrf = CsrfFor(context, token, time);
        if (csrf is null)
        {
            SignOut(context);
            await RefuseAsync(context, StatusCodes.Status401Unauthorized, "the web UI session has ended or is not valid (was the server's token changed?); sign in again with the token.").ConfigureAwait(false);
            return;
        }

        var method = context.Request.Method;
        var changes = !(HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method));
        if (changes && (!FromThisOrigin(context) || !Same(csrf, context.Request.Headers[CsrfHeader].ToString())))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, $"this action came without the page's {CsrfHeader} header or from another site; nothing was changed. Reload the page and try again.").ConfigureAwait(false);
            return;
        }

        await next().ConfigureAwait(false);
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
