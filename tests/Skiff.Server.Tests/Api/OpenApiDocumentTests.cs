using System.Net;
using System.Text.RegularExpressions;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;
using Skiff.Client;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Server.Tests.Api;

/// <summary>
/// The OpenAPI document a real server serves: valid by Microsoft.OpenApi's reader, and in step with docs/api.md
/// and with every call Skiff.Client makes.
/// </summary>
public sealed partial class OpenApiDocumentTests : IAsyncLifetime
{
    private readonly Workspace _workspace = new();
    private RunningServer _server = null!;
    private string _json = "";
    private OpenApiDocument _document = null!;
    private OpenApiDiagnostic _diagnostic = null!;

    public async Task InitializeAsync()
    {
        _server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0 }, TimeProvider.System, CancellationToken.None);
        // No token: the document is readable without one, like /healthz.
        using var http = new HttpClient { BaseAddress = _server.Url };
        using var response = await http.GetAsync("api/v1/openapi.json");
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        _json = await response.Content.ReadAsStringAsync();
        var (document, diagnostic) = OpenApiDocument.Parse(_json, "json", new OpenApiReaderSettings());
        _document = document.ShouldNotBeNull();
        _diagnostic = diagnostic.ShouldNotBeNull();
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public void The_served_document_reads_without_errors_or_warnings()
    {
        _diagnostic.Errors.ShouldBeEmpty(string.Join("\n", _diagnostic.Errors.Select(e => $"{e.Pointer}: {e.Message}")));
        _diagnostic.Warnings.ShouldBeEmpty(string.Join("\n", _diagnostic.Warnings.Select(e => $"{e.Pointer}: {e.Message}")));
        _document.ShouldNotBeNull();
        _document.Info.Title.ShouldBe("Skiff");
        _document.Paths.Count.ShouldBeGreaterThan(10);
    }

    [Fact]
    public void Every_route_in_docs_api_md_is_in_the_document_and_every_route_of_the_document_is_in_docs_api_md()
    {
        var documented = DocumentedRoutes().ToHashSet();
        var served = Operations().Select(o => o.Route).ToHashSet();

        documented.ShouldNotBeEmpty();
        documented.Except(served).ShouldBeEmpty("docs/api.md names routes the server does not serve");
        served.Except(documented).ShouldBeEmpty("the server serves routes docs/api.md does not describe");
    }

    [Fact]
    public void Every_call_the_client_library_makes_is_in_the_document()
    {
        var served = Operations().Select(o => o.Route).ToHashSet();

        ApiRoutes.All.Select(r => $"{r.Method} {r.Template}").Except(served).ShouldBeEmpty();
    }

    [Fact]
    public void Every_call_but_the_probes_and_the_web_ui_sign_in_needs_the_bearer_token_and_says_how_it_fails()
    {
        _document.Components!.SecuritySchemes!["bearer"].Scheme.ShouldBe("bearer");
        _document.Components.SecuritySchemes["bearer"].Type.ShouldBe(SecuritySchemeType.Http);
        var error = _document.Components.Schemas!["ApiError"];
        error.Properties!.Keys.ShouldBe(["error"]);

        foreach (var (route, operation) in Operations())
        {
            // The probes, and the web UI's page and sign-in (it holds no data; its session cookie stands for the token after).
            var anonymous = route is "GET /healthz" or "GET /readyz" or "GET /" or "GET /ui/session" or "POST /ui/session" or "POST /ui/session/end";
            (operation.Security is { Count: > 0 }).ShouldBe(!anonymous, route);
            if (!anonymous)
            {
                operation.Responses!.Keys.ShouldContain("401", route);
                ((OpenApiSchemaReference)operation.Responses["401"].Content!["application/json"].Schema!).Reference.Id.ShouldBe("ApiError", route);
            }
        }
    }

    [Fact]
    public void Bodies_and_answers_have_real_schemas_with_the_wire_names()
    {
        var deploy = Operation("POST /api/v1/deployments");
        var request = Resolve(deploy.RequestBody!.Content!["application/json"].Schema!);
        request.Properties!.Keys.ShouldBe(["location", "release", "path", "uploaded", "timings_ms", "who", "memory_limit", "commit", "dirty", "on", "replicas", "min_replicas", "runs"], ignoreOrder: true);
        var answer = Resolve(deploy.Responses!["200"].Content!["application/json"].Schema!);
        answer.Properties!.Keys.ShouldContain("deployment");
        answer.Properties.Keys.ShouldContain("rollback_of");
        answer.Properties.Keys.ShouldContain("jobs");
        foreach (var (route, status) in new[] { ("POST /api/v1/runs", "201"), ("PUT /api/v1/blobs/{digest}", "201"), ("POST /api/v1/blobs/missing", "200"), ("GET /api/v1/locations", "200") })
        {
            Operation(route).Responses!.Keys.ShouldContain(status, route);
            Operation(route).Responses![status].Content!["application/json"].Schema.ShouldNotBeNull(route);
        }

        Operation("PUT /api/v1/blobs/{digest}").RequestBody!.Content!.Keys.ShouldBe(["application/octet-stream"]);
        Operation("GET /api/v1/runs/{id}/events").Responses!["200"].Content!.Keys.ShouldBe(["application/x-ndjson"]);
    }

    private IEnumerable<(string Route, OpenApiOperation Operation)> Operations() =>
        _document.Paths.SelectMany(p => (p.Value.Operations ?? []).Select(o => ($"{o.Key.Method} {p.Key}", o.Value)));

    private OpenApiOperation Operation(string route) => Operations().Single(o => o.Route == route).Operation;

    private IOpenApiSchema Resolve(IOpenApiSchema schema) =>
        schema is OpenApiSchemaReference reference ? _document.Components!.Schemas![reference.Reference.Id!] : schema;

    /// <summary>Every <c>`METHOD /path`</c> docs/api.md names, without its query.</summary>
    private static IEnumerable<string> DocumentedRoutes()
    {
        var text = File.ReadAllText(Path.Combine(Workspace.RepositoryRoot, "docs", "api.md"));
        return RouteInDocs().Matches(text).Select(m => $"{m.Groups["method"].Value} {m.Groups["path"].Value}");
    }

    [GeneratedRegex(@"`(?<method>GET|POST|PUT|DELETE|PATCH) (?<path>/[^\s`?]*)")]
    private static partial Regex RouteInDocs();
}
