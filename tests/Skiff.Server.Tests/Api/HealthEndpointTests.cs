using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Server.Tests.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Api;

/// <summary><c>GET /api/v1/locations/{name}/health</c> on a real server: the history the store keeps, as clients read it.</summary>
public sealed class HealthEndpointTests : IAsyncLifetime
{
    private readonly Workspace _workspace = new();
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0 }, TimeProvider.System, CancellationToken.None);

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task A_locations_reports_are_listed_newest_first_with_snake_case_kinds_and_an_unknown_location_is_404()
    {
        var release = Some.Release("health");
        await Some.LiveDeploymentAsync(_server.Store, "d-1", "app", release);
        await _server.Store.AppendLocationHealthAsync(new LocationHealthRecord("app", "worker-1", release.Id.ToString(), "OutOfMemory", "run r-1: over 100 MiB", Some.Time), CancellationToken.None);
        await _server.Store.AppendLocationHealthAsync(new LocationHealthRecord("app", "worker-1", release.Id.ToString(), "Crashed", "the code server process exited with code 134", Some.Time.AddMinutes(1)), CancellationToken.None);
        using var http = new HttpClient { BaseAddress = _server.Url };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _server.Token);

        var all = JsonNode.Parse(await http.GetStringAsync("api/v1/locations/app/health"))!.AsArray();
        var newest = JsonNode.Parse(await http.GetStringAsync("api/v1/locations/app/health?limit=1"))!.AsArray();
        var unknown = await http.GetAsync("api/v1/locations/nowhere/health");
        var tooMany = await http.GetAsync("api/v1/locations/app/health?limit=201");

        all.Select(r => (string?)r!["kind"]).ShouldBe(["crashed", "out_of_memory"]);
        ((string?)all[0]!["agent"]).ShouldBe("worker-1");
        ((string?)all[0]!["release"]).ShouldBe(release.Id.ToString());
        ((string?)all[1]!["message"]).ShouldBe("run r-1: over 100 MiB");
        newest.ShouldHaveSingleItem()!["kind"]!.GetValue<string>().ShouldBe("crashed");
        unknown.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        ((string?)JsonNode.Parse(await unknown.Content.ReadAsStringAsync())!["error"]).ShouldStartWith("there is no location 'nowhere'");
        tooMany.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
    }
}
