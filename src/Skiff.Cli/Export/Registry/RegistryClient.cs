using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Skiff.Cli.Export.Registry;

/// <summary>
/// HTTP to one repository of a registry (OCI distribution spec v1.1), signed in as a registry asks in its
/// <c>WWW-Authenticate</c> challenge: anonymously, with Basic credentials, or with a Bearer token from the challenge's
/// realm (the token flow of docker/distribution's token-auth spec, which every public registry uses).
/// </summary>
internal sealed class RegistryClient : IDisposable
{
    /// <summary>How long a registry may go without answering or taking bytes of an upload, unless --push-timeout says otherwise.</summary>
    public static readonly TimeSpan DefaultStallTimeout = TimeSpan.FromSeconds(60);

    private readonly HttpClient _http;
    private readonly ImageReference _target;
    private readonly RegistryCredentials? _credentials;
    private readonly bool _insecure;
    private readonly TimeSpan _stallTimeout;
    private readonly TimeProvider _time;
    private AuthenticationHeaderValue? _authorization;
    private bool _connected;

    /// <summary>
    /// A client for <paramref name="target"/>'s repository. <paramref name="stallTimeout"/> is how long a request may make
    /// no progress (no write of its body taken, no answer after the last one) before the push fails; a slow upload that
    /// keeps moving is never cut off.
    /// </summary>
    public RegistryClient(ImageReference target, RegistryCredentials? credentials, bool insecure, TimeSpan stallTimeout, TimeProvider time)
    {
        _target = target;
        _credentials = credentials;
        _insecure = insecure;
        _stallTimeout = stallTimeout;
        _time = time;
        var handler = new SocketsHttpHandler
        {
            // An upload's Location or a redirect may point elsewhere; the Authorization header is only for the registry (Prepare).
            AllowAutoRedirect = false,
            ConnectTimeout = TimeSpan.FromSeconds(15),
        };
        if (insecure)
        {
            // --insecure-registry: the user said this registry has no certificate worth checking (podman's --tls-verify=false).
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        }

        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("skiff", typeof(RegistryClient).Assembly.GetName().Version?.ToString(3)));
    }

    /// <summary>The registry's root URL, <c>https://HOST/</c>, or <c>http://HOST/</c> for an insecure registry that has no TLS.</summary>
    public Uri Root { get; private set; } = null!;

    /// <summary>Who the pushes are made as, for messages.</summary>
    private string Who => _credentials is null ? "an anonymous client" : $"user {_credentials.User}";

    /// <summary>
    /// Checks that the registry answers the distribution API (<c>GET /v2/</c>) and signs in for push, before an image is built.
    /// With <c>--insecure-registry</c>, https is tried first and plain http used when the registry does not speak TLS, as
    /// docker and podman do for an insecure registry.
    /// </summary>
    /// <exception cref="RegistryException">Unreachable, not a registry, no TLS without --insecure-registry, the login refused, or no answer in time.</exception>
    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        Root = new Uri($"https://{_target.Registry}/");
        HttpResponseMessage response;
        try
        {
            using var ping = new HttpRequestMessage(HttpMethod.Get, new Uri(Root, "v2/"));
            response = await WatchedAsync(ping, $"registry {_target.Registry}", "GET /v2/", cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException exception) when (exception.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            if (!_insecure)
            {
                throw new RegistryException(
                    $"registry {_target.Registry} did not complete a TLS handshake ({Innermost(exception)}); if it serves plain http (a local test registry), pass --insecure-registry.", exception);
            }

            Root = new Uri($"http://{_target.Registry}/");
            response = await SendOnceAsync(() => new HttpRequestMessage(HttpMethod.Get, new Uri(Root, "v2/")), "GET /v2/", cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException exception)
        {
            throw Unreachable(exception);
        }

        using (response)
        {
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                await AuthenticateAsync(response, cancellationToken).ConfigureAwait(false);
            }
            else if (!response.IsSuccessStatusCode)
            {
                throw await FailureAsync(response, "GET /v2/", cancellationToken).ConfigureAwait(false);
            }
        }

        // Signed in: the registry must now let us in (a Basic login is only checked here).
        using var check = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, new Uri(Root, "v2/")), "GET /v2/", cancellationToken).ConfigureAwait(false);
        if (!check.IsSuccessStatusCode)
        {
            throw await FailureAsync(check, "GET /v2/", cancellationToken).ConfigureAwait(false);
        }

        _connected = true;
    }

    /// <summary>A URL of the repository's API: <c>/v2/NAME/</c> + <paramref name="path"/>.</summary>
    public Uri Api(string path) => new(Root, $"v2/{_target.Repository}/{path}");

    /// <summary>
    /// Sends a request made by <paramref name="create"/> (called again for a retry, so a body is opened anew); on a 401,
    /// signs in again as the challenge says (a token for another scope, or one that expired) and retries once.
    /// <paramref name="what"/> names the step for messages, such as <c>HEAD of blob sha256:…</c>.
    /// </summary>
    /// <exception cref="RegistryException">Unreachable, the login refused, or no progress for the stall timeout.</exception>
    public async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> create, string what, CancellationToken cancellationToken)
    {
        var response = await SendOnceAsync(create, what, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Unauthorized)
        {
            return response;
        }

        using (response)
        {
            await AuthenticateAsync(response, cancellationToken).ConfigureAwait(false);
        }

        response = await SendOnceAsync(create, what, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            using (response)
            {
                throw await RefusedAsync(response, cancellationToken).ConfigureAwait(false);
            }
        }

        return response;
    }

    /// <summary>The error for an answer that is not what the spec says a registry answers <paramref name="what"/> with.</summary>
    public async Task<RegistryException> FailureAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        var errors = await ErrorsAsync(response, cancellationToken).ConfigureAwait(false);
        return response.StatusCode switch
        {
            HttpStatusCode.Forbidden => new RegistryException(
                $"registry {_target.Registry} does not let {Who} push to {_target.Repository} (403{errors}); ask its owner for push access, or push to another name."),
            HttpStatusCode.NotFound when what == "GET /v2/" => new RegistryException(
                $"{Root} is not a container registry (GET /v2/ answered 404); check the registry's host and port."),
            >= HttpStatusCode.InternalServerError => new RegistryException(
                $"registry {_target.Registry} failed {what} ({(int)response.StatusCode} {response.ReasonPhrase}{errors}); nothing was tagged. {Retry}"),
            _ => new RegistryException(
                $"registry {_target.Registry} answered {what} with {(int)response.StatusCode} {response.ReasonPhrase}{errors}; nothing was tagged."),
        };
    }

    private async Task<HttpResponseMessage> SendOnceAsync(Func<HttpRequestMessage> create, string what, CancellationToken cancellationToken)
    {
        // Disposed once answered: its body (a file being uploaded) is closed; the answer's own body is already read.
        using var request = create();
        try
        {
            return await WatchedAsync(Prepare(request), $"registry {_target.Registry}", what, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException exception)
        {
            throw Unreachable(exception);
        }
    }

    /// <summary>
    /// Sends a request and reads its answer (headers and its small body), failing when <paramref name="who"/> stops
    /// answering: the stall timeout passes with no write of the request's body taken by the connection, or with no answer
    /// after the last one. Written here because HttpClient and SocketsHttpHandler have no such timeout: ConnectTimeout ends
    /// once connected, and HttpClient.Timeout bounds the whole request, which the upload of a large blob on a slow link
    /// must be free to exceed. A watchdog on the connection's stream itself (ConnectCallback) would also time out the read
    /// SocketsHttpHandler keeps pending on an idle pooled connection, and that read is not progress of any request.
    /// </summary>
    /// <exception cref="RegistryException">No progress for the stall timeout.</exception>
    private async Task<HttpResponseMessage> WatchedAsync(HttpRequestMessage request, string who, string what, CancellationToken cancellationToken)
    {
        using var stall = new CancellationTokenSource(_stallTimeout, _time);
        using var watched = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stall.Token);
        if (request.Content is { } body)
        {
            request.Content = new ProgressReportingContent(body, () =>
            {
                try
                {
                    stall.CancelAfter(_stallTimeout);
                }
                catch (ObjectDisposedException)
                {
                    // A write that completes after the answer came (a registry may answer before it read the whole body).
                }
            });
        }

        try
        {
            return await _http.SendAsync(request, watched.Token).ConfigureAwait(false);
        }
        catch (Exception exception) when (stall.IsCancellationRequested && !cancellationToken.IsCancellationRequested
            && exception is OperationCanceledException or HttpRequestException or IOException)
        {
            throw new RegistryException(
                $"{who} stopped answering for {_stallTimeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s during {what}; nothing was tagged. Check that it runs and is reachable from here (a registry that is slow but up can be given more time with --push-timeout). {Retry}",
                exception);
        }
    }

    private HttpRequestMessage Prepare(HttpRequestMessage request)
    {
        // The login is the registry's: an upload URL on another host (a storage backend) does not get it.
        if (_authorization is not null && request.RequestUri is { } uri && uri.Authority == Root.Authority)
        {
            request.Headers.Authorization = _authorization;
        }

        return request;
    }

    /// <summary>Answers a 401's challenge: Basic with the credentials, or a Bearer token from the realm.</summary>
    private async Task AuthenticateAsync(HttpResponseMessage unauthorized, CancellationToken cancellationToken)
    {
        var challenge = unauthorized.Headers.WwwAuthenticate.FirstOrDefault(c => c.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
            ?? unauthorized.Headers.WwwAuthenticate.FirstOrDefault(c => c.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase));
        if (challenge is null)
        {
            throw new RegistryException(
                $"registry {_target.Registry} asked for a login (401) with {(unauthorized.Headers.WwwAuthenticate.Count == 0 ? "no WWW-Authenticate challenge" : $"a challenge skiff does not know ({unauthorized.Headers.WwwAuthenticate.First().Scheme})")}; skiff signs in with Basic credentials or a Bearer token.");
        }

        if (challenge.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            if (_credentials is null)
            {
                throw NeedsLogin("Basic");
            }

            var basic = new AuthenticationHeaderValue("Basic", _credentials.Basic);
            if (_authorization?.ToString() == basic.ToString())
            {
                throw await RefusedAsync(unauthorized, cancellationToken).ConfigureAwait(false);
            }

            _authorization = basic;
            return;
        }

        _authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(ChallengeParameters(challenge.Parameter ?? ""), cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// Gets a token from the challenge's realm for the challenge's scope and pull+push on this repository, sending the
    /// credentials (if any) as Basic, as the token-auth spec's clients do; anonymous otherwise.
    /// </summary>
    private async Task<string> TokenAsync(IReadOnlyDictionary<string, string> challenge, CancellationToken cancellationToken)
    {
        if (!challenge.TryGetValue("realm", out var realmText) || !Uri.TryCreate(realmText, UriKind.Absolute, out var realm) || realm.Scheme is not ("https" or "http"))
        {
            throw new RegistryException($"registry {_target.Registry} asked for a Bearer token without a usable realm ('{challenge.GetValueOrDefault("realm")}'); it is misconfigured.");
        }

        var query = new List<string>();
        if (challenge.TryGetValue("service", out var service))
        {
            query.Add($"service={Uri.EscapeDataString(service)}");
        }

        var scopes = new List<string>();
        if (challenge.TryGetValue("scope", out var asked))
        {
            scopes.AddRange(asked.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }

        scopes.Add($"repository:{_target.Repository}:pull,push");
        query.AddRange(scopes.Distinct(StringComparer.Ordinal).Select(s => $"scope={Uri.EscapeDataString(s)}"));
        var url = new UriBuilder(realm) { Query = string.Join('&', [.. (realm.Query.Length > 1 ? [realm.Query[1..]] : Array.Empty<string>()), .. query]) }.Uri;

        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (_credentials is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", _credentials.Basic);
        }

        HttpResponseMessage response;
        try
        {
            response = await WatchedAsync(request, $"the token service {realm.GetLeftPart(UriPartial.Path)} of registry {_target.Registry}", $"a token request for {_target.Repository}", cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException exception)
        {
            throw new RegistryException($"could not reach the token service {realm.GetLeftPart(UriPartial.Path)} that registry {_target.Registry} signs in with ({Innermost(exception)}).", exception);
        }

        using (response)
        {
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                throw _credentials is null
                    ? NeedsLogin("Bearer")
                    : new RegistryException(
                        $"the token service of registry {_target.Registry} refused the credentials of {_credentials.User} (from {_credentials.Source}) ({(int)response.StatusCode}{await ErrorsAsync(response, cancellationToken).ConfigureAwait(false)}); check the user and password, or log in again with `podman login {_target.Registry}`.");
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new RegistryException(
                    $"the token service {realm.GetLeftPart(UriPartial.Path)} of registry {_target.Registry} answered {(int)response.StatusCode} {response.ReasonPhrase}{await ErrorsAsync(response, cancellationToken).ConfigureAwait(false)}.");
            }

            string? token = null;
            try
            {
                var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
                // The spec's "token"; "access_token" is the OAuth 2 name some services answer with instead.
                token = (string?)body?["token"] ?? (string?)body?["access_token"];
            }
            catch (Exception exception) when (exception is JsonException or InvalidOperationException or FormatException)
            {
            }

            return token is { Length: > 0 }
                ? token
                : throw new RegistryException($"the token service {realm.GetLeftPart(UriPartial.Path)} of registry {_target.Registry} answered without a token.");
        }
    }

    /// <summary>The error for a request refused after signing in: wrong credentials, or too few rights for an anonymous token.</summary>
    private async Task<RegistryException> RefusedAsync(HttpResponseMessage response, CancellationToken cancellationToken) =>
        _credentials is null
            ? NeedsLogin(_authorization?.Scheme ?? "Basic")
            : new RegistryException(
                $"registry {_target.Registry} refused the credentials of {_credentials.User} (from {_credentials.Source}) for {_target.Repository} (401{await ErrorsAsync(response, cancellationToken).ConfigureAwait(false)}); check the user and password, or log in again with `podman login {_target.Registry}`.");

    private RegistryException NeedsLogin(string scheme) => new(
        $"registry {_target.Registry} wants a login to push {_target.Repository} ({scheme}) and skiff found none: pass --registry-user USER with the password in {RegistryCredentials.PasswordVariable}, or log in with `podman login {_target.Registry}` (skiff reads its auth.json).");

    /// <summary>What to do after a push broke off: the blobs the registry took are kept, so the same push resumes.</summary>
    public const string Retry = "Run the same push again once the registry is back: the blobs it already has are not sent again.";

    private RegistryException Unreachable(HttpRequestException exception) => _connected
        ? new($"lost the connection to registry {_target.Registry} in the middle of the push ({Innermost(exception)}); nothing was tagged. {Retry}", exception)
        : new($"could not reach registry {_target.Registry} at {Root} ({Innermost(exception)}); check the host and port, and that it runs.", exception);

    private static string Innermost(Exception exception)
    {
        while (exception.InnerException is { } inner)
        {
            exception = inner;
        }

        return exception.Message.TrimEnd('.');
    }

    /// <summary>The spec's error body (<c>{"errors":[{"code","message"}]}</c>) as ": CODE message; …", or nothing.</summary>
    private static async Task<string> ErrorsAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
            var errors = body?["errors"]?.AsArray().Select(e => $"{(string?)e?["code"]} {(string?)e?["message"]}".Trim()).Where(e => e.Length > 0).ToList();
            return errors is { Count: > 0 } ? $": {string.Join("; ", errors)}" : "";
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException or FormatException or HttpRequestException)
        {
            return "";
        }
    }

    /// <summary>The parameters of a challenge, <c>realm="…",service="…",scope="repository:a:pull,push"</c> (RFC 7235 auth-params; commas inside quotes belong to the value).</summary>
    internal static Dictionary<string, string> ChallengeParameters(string text)
    {
        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ',' || char.IsWhiteSpace(text[i])))
            {
                i++;
            }

            var equals = text.IndexOf('=', i);
            if (equals < 0)
            {
                break;
            }

            var name = text[i..equals].Trim();
            i = equals + 1;
            var value = new StringBuilder();
            if (i < text.Length && text[i] == '"')
            {
                for (i++; i < text.Length && text[i] != '"'; i++)
                {
                    if (text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                    }

                    value.Append(text[i]);
                }

                i++;
            }
            else
            {
                for (; i < text.Length && text[i] != ','; i++)
                {
                    value.Append(text[i]);
                }
            }

            parameters[name] = value.ToString().Trim();
        }

        return parameters;
    }

    public void Dispose() => _http.Dispose();
}
