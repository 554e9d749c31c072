using System.Text.Json.Nodes;
using Skiff.Server.Tests.Metrics;

namespace Skiff.Server.Tests.Api;

/// <summary>
/// A location whose live version declares tasks is a pool (docs/tasks.md): the tasks an agent reports at activation are
/// stored with the deployment and listed by the API, and they follow whatever version is live.
/// </summary>
public sealed class PoolTests(MetricsEndpointTests.Fixture fixture) : IClassFixture<MetricsEndpointTests.Fixture>
{
    // As the SDK's code server lists a task (docs/code-server-protocol.md).
    private const string Reconstruct =
        """
        [{"name":"reconstruct","description":"Builds a mesh from a scan","input_type":"Meshing.Scan","output_type":"Meshing.Mesh",
          "input_schema":{"type":["object","null"],"properties":{"scan_id":{"type":"string"}}},"output_schema":{"type":"integer"},
          "retry":{"max_attempts":3,"initial_delay_ms":5000,"backoff_multiplier":2,"max_delay_ms":60000}}]
        """;

    [Fact]
    public async Task Tasks_reported_at_activation_are_listed_with_the_location_until_a_version_without_them_goes_live()
    {
        fixture.Agent.Tasks["meshing"] = JsonNode.Parse(Reconstruct)!.AsArray();
        await MetricsEndpointTests.DeployAsync(fixture.Server, "meshing", fixture.Releases[0]);
        await MetricsEndpointTests.DeployAsync(fixture.Server, "plain", fixture.Other);
        using var http = MetricsEndpointTests.Http(fixture.Server, fixture.Server.Token);

        var jobs = JsonNode.Parse(await http.GetStringAsync("api/v1/locations/meshing/jobs"))!;
        var plainJobs = JsonNode.Parse(await http.GetStringAsync("api/v1/locations/plain/jobs"))!;
        var locations = JsonNode.Parse(await http.GetStringAsync("api/v1/locations"))!.AsArray();

        var task = jobs["tasks"]!.AsArray().ShouldHaveSingleItem()!;
        ((string?)task["name"]).ShouldBe("reconstruct");
        ((string?)task["input_type"]).ShouldBe("Meshing.Scan");
        ((string?)task["input_schema"]?["properties"]?["scan_id"]?["type"]).ShouldBe("string");
        ((int?)task["retry"]?["max_attempts"]).ShouldBe(3);
        ((long?)task["retry"]?["initial_delay_ms"]).ShouldBe(5000);
        plainJobs["tasks"]!.AsArray().ShouldBeEmpty();
        ((int?)locations.Single(l => (string?)l!["location"] == "meshing")!["tasks"]).ShouldBe(1);
        ((int?)locations.Single(l => (string?)l!["location"] == "plain")!["tasks"]).ShouldBe(0);

        // The next version declares none: the location is no longer a pool, and its earlier deployment keeps what it served.
        fixture.Agent.Tasks.TryRemove("meshing", out _);
        await MetricsEndpointTests.DeployAsync(fixture.Server, "meshing", fixture.Releases[1]);
        var after = JsonNode.Parse(await http.GetStringAsync("api/v1/locations/meshing/jobs"))!;
        var history = await fixture.Server.Store.ListDeploymentsAsync("meshing", 10, CancellationToken.None);

        after["tasks"]!.AsArray().ShouldBeEmpty();
        history.Select(d => d.TasksJson is null ? 0 : JsonNode.Parse(d.TasksJson)!.AsArray().Count).ShouldBe([0, 1]);
    }
}
