using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Data.Sqlite;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Server.Tests.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Api;

/// <summary>
/// Tokens with roles and locations against a real server (no agent: every call is answered before one would be
/// needed): every endpoint × every role, location scope, revocation, what is stored, and the audit log.
/// </summary>
public sealed class AuthorizationTests(AuthorizationTests.Fixture fixture) : IClassFixture<AuthorizationTests.Fixture>
{
    private static readonly string SomeDigest = "sha256:" + new string('0', 64);

    private RunningServer TheServer => fixture.Server;

    private Dictionary<string, string> Secrets => fixture.Secrets;

    /// <summary>One server for the class, with a token of each role, two for one location, and something in two locations.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        private readonly Workspace _workspace = new();

        internal RunningServer Server { get; private set; } = null!;

        internal Dictionary<string, string> Secrets { get; } = new(StringComparer.Ordinal);

        public async Task InitializeAsync()
        {
            Server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0 }, TimeProvider.System, CancellationToken.None);
            using var admin = Http(Server, Server.Token);
            foreach (var (name, role, locations) in new[]
            {
                ("reader", "read", Array.Empty<string>()),
                ("runner", "run", []),
                ("deployer", "deploy", []),
                ("boss", "admin", []),
                ("analytics-deployer", "deploy", ["analytics"]),
                ("analytics-admin", "admin", ["analytics"]),
            })
            {
                var response = await admin.PostAsJsonAsync("api/v1/tokens", new { name, role, locations });
                response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
                Secrets[name] = (string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["secret"]!;
            }

            var release = Some.Release("scoped");
            await Some.LiveDeploymentAsync(Server.Store, "d-analytics", "analytics", release);
            await Some.LiveDeploymentAsync(Server.Store, "d-reports", "reports", release);
            await Server.Store.CreateRunAsync(Some.Run("r-analytics", "analytics", release), CancellationToken.None);
            await Server.Store.CreateRunAsync(Some.Run("r-reports", "reports", release), CancellationToken.None);
        }

        public async Task DisposeAsync()
        {
            await Server.DisposeAsync();
            _workspace.Dispose();
        }
    }

    private HttpClient Http(string? token) => Http(TheServer, token);

    private static HttpClient Http(RunningServer server, string? token)
    {
        var http = new HttpClient { BaseAddress = server.Url };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return http;
    }

    private static ApiRole RoleOf(string token) => token switch
    {
        "reader" => ApiRole.Read,
        "runner" => ApiRole.Run,
        "deployer" => ApiRole.Deploy,
        _ => ApiRole.Admin,
    };

    /// <summary>Every endpoint the server maps that needs a token, as (method, route pattern, its role).</summary>
    private List<(string Method, string Route, RequiredRole? Role)> TokenEndpoints() =>
    [
        .. TheServer.Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IAllowAnonymous>() is null)
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (m, "/" + e.RoutePattern.RawText!.TrimStart('/'), e.Metadata.GetMetadata<RequiredRole>()))),
    ];

    [Fact]
    public void Every_endpoint_that_needs_a_token_declares_the_role_it_needs()
    {
        var endpoints = TokenEndpoints();

        endpoints.Count.ShouldBeGreaterThan(25);
        endpoints.Where(e => e.Role is null).Select(e => $"{e.Method} {e.Route}").ShouldBeEmpty("these endpoints declare no role in Hosting/Authorization.cs");
        // The anonymous ones are the probes, the API description and the web UI's page and sign-in; nothing else.
        TheServer.Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IAllowAnonymous>() is not null)
            .Select(e => "/" + e.RoutePattern.RawText!.TrimStart('/'))
            .ShouldAllBe(route => route == "/" || route == "/healthz" || route == "/readyz" || route.StartsWith("/ui/", StringComparison.Ordinal) || route == "/api/v1/openapi.json");
    }

    [Fact]
    public async Task Every_endpoint_answers_every_role_below_its_own_with_403_and_lets_the_others_through()
    {
        var checkedCalls = 0;
        foreach (var (method, route, required) in TokenEndpoints())
        {
            var path = route.TrimStart('/')
                .Replace("{digest}", SomeDigest, StringComparison.Ordinal)
                .Replace("{from}", SomeDigest, StringComparison.Ordinal)
                .Replace("{to}", SomeDigest, StringComparison.Ordinal)
                .Replace("{id}", "x-none", StringComparison.Ordinal)
                .Replace("{name}", "nothing-here", StringComparison.Ordinal);
            foreach (var token in new[] { "reader", "runner", "deployer", "boss" })
            {
                using var http = Http(Secrets[token]);
                // An empty body: an allowed call fails on it (400, 404) or does nothing harmful (gc of an empty store).
                using var request = new HttpRequestMessage(new HttpMethod(method), path)
                {
                    Content = method == "GET" ? null : new StringContent("", Encoding.UTF8, method == "PUT" ? "application/octet-stream" : "application/json"),
                };
                using var response = await http.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                var call = $"{method} {route} with a {token} token: {(int)response.StatusCode} {body}";
                if (RoleOf(token) < required!.Role)
                {
                    response.StatusCode.ShouldBe(HttpStatusCode.Forbidden, call);
                    ((string)JsonNode.Parse(body)!["error"]!).ShouldContain($"needs a token with the role '{RequiredRole.Name(required.Role)}'", customMessage: call);
                }
                else
                {
                    response.StatusCode.ShouldNotBe(HttpStatusCode.Forbidden, call);
                    response.StatusCode.ShouldNotBe(HttpStatusCode.Unauthorized, call);
                    ((int)response.StatusCode).ShouldBeLessThan(500, call);
                }

                checkedCalls++;
            }
        }

        checkedCalls.ShouldBe(TokenEndpoints().Count * 4);
        // Nothing succeeded (gc finds the seeded releases' blobs missing), so nothing changed and nothing was recorded.
        (await TheServer.Store.ListAuditAsync(null, 1000, CancellationToken.None)).Where(e => e.Token is "reader" or "runner" or "deployer" || e.Token == "boss" && e.Action != "token.create").ShouldBeEmpty();
    }

    [Theory]
    [InlineData("GET", "api/v1/runs?location=analytics", null, true)]
    [InlineData("GET", "api/v1/runs?location=reports", null, false)]
    [InlineData("GET", "api/v1/runs", null, false)]
    [InlineData("GET", "api/v1/runs/search?location=reports", null, false)]
    [InlineData("GET", "api/v1/runs/r-analytics", null, true)]
    [InlineData("GET", "api/v1/runs/r-reports", null, false)]
    [InlineData("GET", "api/v1/runs/r-reports/events", null, false)]
    [InlineData("POST", "api/v1/runs/r-reports/cancel", null, false)]
    [InlineData("GET", "api/v1/deployments/d-analytics", null, true)]
    [InlineData("GET", "api/v1/deployments/d-reports", null, false)]
    [InlineData("GET", "api/v1/locations/reports/deployments", null, false)]
    [InlineData("GET", "api/v1/locations/analytics/deployments", null, true)]
    [InlineData("GET", "api/v1/locations/reports/health", null, false)]
    [InlineData("GET", "api/v1/locations/analytics/health", null, true)]
    [InlineData("POST", "api/v1/locations/reports/rollback", null, false)]
    [InlineData("POST", "api/v1/deployments", """{"location":"reports","release":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}""", false)]
    [InlineData("POST", "api/v1/deployments", """{"location":"analytics","release":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}""", true)]
    [InlineData("POST", "api/v1/deployments", """{"location":"analytics","location":"reports","release":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}""", false)]
    [InlineData("POST", "api/v1/runs", """{"location":"reports","job":"nightly_etl"}""", false)]
    [InlineData("GET", "api/v1/locations", null, true)]
    [InlineData("POST", "api/v1/gc", null, false)]
    [InlineData("GET", "api/v1/tokens", null, false)]
    public async Task A_token_for_one_location_acts_on_and_reads_only_that_location(string method, string path, string? body, bool allowed)
    {
        foreach (var token in new[] { "analytics-deployer", "analytics-admin" })
        {
            using var http = Http(Secrets[token]);
            using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = body is null ? null : new StringContent(body, Encoding.UTF8, "application/json") };
            var liveBefore = (await TheServer.Store.GetLocationAsync("reports", CancellationToken.None))!.LiveDeployment;

            using var response = await http.SendAsync(request);
            var answer = await response.Content.ReadAsStringAsync();

            if (allowed)
            {
                response.StatusCode.ShouldNotBe(HttpStatusCode.Forbidden, answer);
                ((int)response.StatusCode).ShouldBeLessThan(500, answer);
            }
            else if (token == "analytics-deployer" && (path.Contains("/gc", StringComparison.Ordinal) || path.Contains("/tokens", StringComparison.Ordinal)))
            {
                response.StatusCode.ShouldBe(HttpStatusCode.Forbidden, answer);
                ((string)JsonNode.Parse(answer)!["error"]!).ShouldContain("'admin'");
            }
            else
            {
                response.StatusCode.ShouldBe(HttpStatusCode.Forbidden, answer);
                var error = (string)JsonNode.Parse(answer)!["error"]!;
                error.ShouldContain($"token '{token}'");
                error.ShouldContain(path.Contains("/gc", StringComparison.Ordinal) || path.Contains("/tokens", StringComparison.Ordinal) ? "every location" : "analytics");
            }

            (await TheServer.Store.GetLocationAsync("reports", CancellationToken.None))!.LiveDeployment.ShouldBe(liveBefore);
        }
    }

    [Fact]
    public async Task A_revoked_token_is_refused_at_its_next_request_also_when_anotherTheServer_revoked_it()
    {
        using var admin = Http(TheServer.Token);
        var created = await (await admin.PostAsJsonAsync("api/v1/tokens", new { name = "short-lived", role = "read" })).Content.ReadFromJsonAsync<JsonObject>();
        var other = await (await admin.PostAsJsonAsync("api/v1/tokens", new { name = "elsewhere", role = "read" })).Content.ReadFromJsonAsync<JsonObject>();
        using var shortLived = Http((string)created!["secret"]!);
        using var elsewhere = Http((string)other!["secret"]!);
        (await shortLived.GetAsync("api/v1/locations")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await elsewhere.GetAsync("api/v1/locations")).StatusCode.ShouldBe(HttpStatusCode.OK);

        var revoke = await admin.DeleteAsync("api/v1/tokens/short-lived");
        // As a server sharing the database would: straight in the store, past this server.
        await TheServer.Store.DeleteTokenAsync("elsewhere", CancellationToken.None);

        revoke.StatusCode.ShouldBe(HttpStatusCode.OK);
        var refused = await shortLived.GetAsync("api/v1/locations");
        refused.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        ((string)JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["error"]!).ShouldContain("revoked");
        (await elsewhere.GetAsync("api/v1/locations")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await admin.DeleteAsync("api/v1/tokens/short-lived")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await admin.DeleteAsync("api/v1/tokens/server")).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var audit = await TheServer.Store.ListAuditAsync(null, 5, CancellationToken.None);
        audit[0].ShouldBe(audit[0] with { Token = "server", Action = "token.revoke", Target = "short-lived" });
    }

    [Fact]
    public async Task Tokens_are_listed_without_their_secret_and_stored_only_as_a_sha256_of_it()
    {
        using var admin = Http(TheServer.Token);

        var list = await admin.GetStringAsync("api/v1/tokens");

        var names = JsonNode.Parse(list)!.AsArray().Select(t => (string)t!["name"]!).ToList();
        names[0].ShouldBe("server");
        names.ShouldBe([.. names.Order(StringComparer.Ordinal).Where(n => n != "server").Prepend("server")]);
        Secrets.Keys.ShouldBeSubsetOf(names);
        foreach (var secret in Secrets.Values)
        {
            list.ShouldNotContain(secret);
            list.ShouldNotContain(AccessTokens.Hash(secret));
        }

        var database = ((SqliteMetadataStore)TheServer.Store).DatabasePath;
        await using var connection = new SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT secret_hash FROM tokens WHERE name = 'reader';";
        ((string)(await command.ExecuteScalarAsync())!).ShouldBe(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(Secrets["reader"]))));
        // Nowhere in the database's files, the write-ahead log included.
        foreach (var file in Directory.GetFiles(Path.GetDirectoryName(database)!, Path.GetFileName(database) + "*"))
        {
            var bytes = await File.ReadAllBytesAsync(file);
            Encoding.Latin1.GetString(bytes).ShouldNotContain(Secrets["reader"], customMessage: file);
        }
    }

    [Fact]
    public async Task Making_a_token_with_a_bad_name_role_or_location_is_refused_and_makes_nothing()
    {
        using var admin = Http(TheServer.Token);

        var badRole = await admin.PostAsJsonAsync("api/v1/tokens", new { name = "x", role = "root" });
        var badName = await admin.PostAsJsonAsync("api/v1/tokens", new { name = "has space", role = "read" });
        var server = await admin.PostAsJsonAsync("api/v1/tokens", new { name = "server", role = "read" });
        var badLocation = await admin.PostAsJsonAsync("api/v1/tokens", new { name = "y", role = "read", locations = new[] { ".." } });
        var twice = await admin.PostAsJsonAsync("api/v1/tokens", new { name = "reader", role = "admin" });

        badRole.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        ((string)JsonNode.Parse(await badRole.Content.ReadAsStringAsync())!["error"]!).ShouldContain("admin, deploy, run or read");
        badName.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        server.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        badLocation.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        twice.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        var after = (await TheServer.Store.ListTokensAsync(CancellationToken.None)).Select(t => t.Name).ToList();
        after.ShouldNotContain("x");
        after.ShouldNotContain("y");
        after.ShouldNotContain("has space");
        (await TheServer.Store.GetTokenAsync("reader", CancellationToken.None))!.Role.ShouldBe("read");
    }

    [Fact]
    public async Task The_audit_log_records_the_token_that_made_a_change_and_only_an_admin_reads_it()
    {
        using var boss = Http(Secrets["boss"]);
        using var reader = Http(Secrets["reader"]);

        var created = await boss.PostAsJsonAsync("api/v1/tokens", new { name = "made-by-boss", role = "run", locations = new[] { "analytics" } });
        var audit = await boss.GetFromJsonAsync<JsonArray>("api/v1/audit?limit=1");
        var refused = await reader.GetAsync("api/v1/audit");

        created.StatusCode.ShouldBe(HttpStatusCode.Created);
        var entry = audit!.Single()!;
        ((string)entry["token"]!).ShouldBe("boss");
        ((string)entry["action"]!).ShouldBe("token.create");
        ((string)entry["target"]!).ShouldBe("made-by-boss");
        ((string)entry["detail"]!).ShouldBe("run", "the role, from the answer");
        (await TheServer.Store.GetTokenAsync("made-by-boss", CancellationToken.None))!.CreatedBy.ShouldBe("boss");
        refused.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        var setUp = (await TheServer.Store.ListAuditAsync(null, 100, CancellationToken.None)).Where(e => e.Token == "server").ToList();
        setUp.Select(e => (e.Action, e.Target)).ShouldContain(("token.create", "analytics-deployer"));
    }

    [Fact]
    public async Task A_token_for_one_location_is_shown_that_location_alone_in_the_lists_of_every_location()
    {
        using var scoped = Http(Secrets["analytics-deployer"]);
        using var everyone = Http(Secrets["reader"]);

        var locations = await scoped.GetFromJsonAsync<JsonArray>("api/v1/locations");
        var overview = await scoped.GetFromJsonAsync<JsonObject>("api/v1/overview");
        var all = await everyone.GetFromJsonAsync<JsonArray>("api/v1/locations");

        locations!.Select(l => (string?)l!["location"]).ShouldBe(["analytics"]);
        overview!["locations"]!.AsArray().Select(l => (string?)l!["location"]).ShouldBe(["analytics"]);
        all!.Select(l => (string?)l!["location"]).ShouldBe(["analytics", "reports"]);
    }

    [Fact]
    public async Task A_web_UI_session_is_refused_from_another_origin_and_on_a_WebSocket_whatever_the_method()
    {
        using var handler = new HttpClientHandler { UseCookies = true, CookieContainer = new CookieContainer() };
        using var browser = new HttpClient(handler) { BaseAddress = TheServer.Url };
        (await browser.PostAsJsonAsync("ui/session", new { token = TheServer.Token })).StatusCode.ShouldBe(HttpStatusCode.OK);

        using var foreign = new HttpRequestMessage(HttpMethod.Get, "api/v1/locations");
        // SameSite ignores the port: a page on another port of this host sends the cookie, with its own Origin.
        foreign.Headers.Add("Origin", "http://127.0.0.1:3000");
        var fromElsewhere = await browser.SendAsync(foreign);
        using var upgrade = new HttpRequestMessage(HttpMethod.Get, "api/v1/agents/connect?name=intruder");
        upgrade.Headers.Add("Connection", "Upgrade");
        upgrade.Headers.Add("Upgrade", "websocket");
        upgrade.Headers.Add("Sec-WebSocket-Version", "13");
        upgrade.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(new byte[16]));
        var socket = await browser.SendAsync(upgrade);
        var sameOrigin = await browser.GetAsync("api/v1/locations");

        fromElsewhere.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        ((string)JsonNode.Parse(await fromElsewhere.Content.ReadAsStringAsync())!["error"]!).ShouldContain("came from another site (http://127.0.0.1:3000)");
        socket.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        ((string)JsonNode.Parse(await socket.Content.ReadAsStringAsync())!["error"]!).ShouldContain("never good for a WebSocket");
        sameOrigin.StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_read_token_signs_in_to_the_web_ui_and_views_but_its_actions_are_refused_and_revoking_it_ends_the_session()
    {
        using var admin = Http(TheServer.Token);
        var secret = (string)(await (await admin.PostAsJsonAsync("api/v1/tokens", new { name = "ui-reader", role = "read" })).Content.ReadFromJsonAsync<JsonObject>())!["secret"]!;
        using var handler = new HttpClientHandler { UseCookies = true, CookieContainer = new CookieContainer() };
        using var browser = new HttpClient(handler) { BaseAddress = TheServer.Url };

        var signIn = await browser.PostAsJsonAsync("ui/session", new { token = secret });
        var session = await signIn.Content.ReadFromJsonAsync<JsonObject>();
        var view = await browser.GetAsync("api/v1/runs/r-analytics");
        using var cancel = new HttpRequestMessage(HttpMethod.Post, "api/v1/runs/r-analytics/cancel");
        cancel.Headers.Add("X-Skiff-Csrf", (string)session!["csrf"]!);
        var action = await browser.SendAsync(cancel);
        await admin.DeleteAsync("api/v1/tokens/ui-reader");
        var afterRevoke = await browser.GetAsync("api/v1/runs/r-analytics");

        signIn.StatusCode.ShouldBe(HttpStatusCode.OK);
        ((string)session["role"]!).ShouldBe("read");
        ((string)session["token"]!).ShouldBe("ui-reader");
        signIn.Headers.GetValues("Set-Cookie").Single().ShouldNotContain(secret);
        view.StatusCode.ShouldBe(HttpStatusCode.OK);
        action.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        ((string)JsonNode.Parse(await action.Content.ReadAsStringAsync())!["error"]!).ShouldContain("needs a token with the role 'run'");
        afterRevoke.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task The_OpenAPI_document_says_the_role_of_every_call_that_needs_a_token()
    {
        using var anonymous = Http(null);
        var document = JsonNode.Parse(await anonymous.GetStringAsync("api/v1/openapi.json"))!;

        var operations = document["paths"]!.AsObject()
            .SelectMany(p => p.Value!.AsObject().Where(o => o.Value?["security"] is not null).Select(o => (Route: $"{o.Key.ToUpperInvariant()} {p.Key}", Operation: o.Value!)))
            .ToList();

        operations.Count.ShouldBe(TokenEndpoints().Count);
        foreach (var (route, operation) in operations)
        {
            var role = TokenEndpoints().Single(e => $"{e.Method} {e.Route}" == route).Role!;
            ((string?)operation["x-skiff-role"]).ShouldBe(RequiredRole.Name(role.Role), route);
            ((string?)operation["description"] ?? "").ShouldContain($"Needs a `{RequiredRole.Name(role.Role)}` token", customMessage: route);
        }
    }
}
