using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Skiff.Core;

namespace Skiff.Cli.Tests.Platform;

/// <summary>The server's rules at the HTTP boundary: tokens, digests, limits, unknown names, restarts.</summary>
public sealed class ServerRulesTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private EmbeddedPlatform Platform => fixture.Platform;

    [Theory]
    [InlineData(null)]
    [InlineData("skiff_wrong")]
    public async Task A_missing_or_wrong_token_gets_401_and_changes_nothing(string? token)
    {
        using var http = Platform.Http(token);
        var before = await Platform.Server.Store.ListLocationsAsync(CancellationToken.None);

        var list = await http.GetAsync("api/v1/locations");
        var deploy = await http.PostAsJsonAsync("api/v1/deployments", new { location = "intruder", release = "sha256:" + new string('a', 64) });
        var upload = await http.PutAsync($"api/v1/blobs/{Digest.Compute("x"u8)}", new ByteArrayContent("x"u8.ToArray()));
        var health = await http.GetAsync("healthz");
        var ready = await http.GetAsync("readyz");
        var cli = await Platform.SkiffAsync("locations", "--token", token ?? "");

        list.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        deploy.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        upload.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        health.StatusCode.ShouldBe(HttpStatusCode.OK);
        ready.StatusCode.ShouldBe(HttpStatusCode.OK, "metadata and blob stores answer; no token needed");
        ((string?)JsonNode.Parse(await ready.Content.ReadAsStringAsync())!["status"]).ShouldBe("ready");
        (await Platform.Server.Store.ListLocationsAsync(CancellationToken.None)).Count.ShouldBe(before.Count);
        (await Platform.Server.Blobs.ContainsAsync(Digest.Compute("x"u8), CancellationToken.None)).ShouldBeFalse();
        cli.ExitCode.ShouldNotBe(0);
        cli.Stderr.ShouldContain("401");
    }

    [Fact]
    public async Task An_upload_whose_bytes_do_not_match_its_digest_is_rejected_and_the_store_is_unchanged()
    {
        using var http = Platform.Http();
        var claimed = Digest.Compute("what was promised"u8);

        var response = await http.PutAsync($"api/v1/blobs/{claimed}", new ByteArrayContent("something else"u8.ToArray()));
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        ((string)body["error"]!).ShouldContain($"did not match that digest (got {Digest.Compute("something else"u8)})");
        (await Platform.Server.Blobs.ContainsAsync(claimed, CancellationToken.None)).ShouldBeFalse();
        Directory.EnumerateFiles(Path.Combine(Platform.Server.Blobs.Location, "tmp")).ShouldBeEmpty();
    }

    [Fact]
    public async Task An_upload_that_is_neither_a_safe_archive_nor_a_manifest_is_rejected()
    {
        using var http = Platform.Http();
        var junk = "not a manifest, not an archive"u8.ToArray();

        var response = await http.PutAsync($"api/v1/blobs/{Digest.Compute(junk)}", new ByteArrayContent(junk));

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await Platform.Server.Blobs.ContainsAsync(Digest.Compute(junk), CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task A_request_body_over_the_limit_is_refused()
    {
        using var http = Platform.Http();
        var huge = new StringBuilder("{\"digests\":[");
        huge.Append(string.Join(',', Enumerable.Repeat($"\"{Digest.Compute("x"u8)}\"", 20_000)));
        huge.Append("]}");

        var response = await http.PostAsync("api/v1/blobs/missing", new StringContent(huge.ToString(), Encoding.UTF8, "application/json"));

        response.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        ((string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!).ShouldContain("at most");
    }

    [Fact]
    public async Task Unknown_locations_deployments_and_releases_get_clear_errors()
    {
        using var http = Platform.Http();

        var jobs = await Platform.SkiffAsync("jobs", "no-such-place");
        var history = await Platform.SkiffAsync("history", "no-such-place");
        var rollback = await Platform.SkiffAsync("rollback", "no-such-place");
        var deployment = await http.GetAsync("api/v1/deployments/d-nope");
        var unknownRelease = await http.PostAsJsonAsync("api/v1/deployments", new { location = "somewhere", release = "sha256:" + new string('b', 64) });
        var badName = await http.PostAsJsonAsync("api/v1/deployments", new { location = "Not A Name", release = "sha256:" + new string('b', 64) });

        jobs.ExitCode.ShouldNotBe(0);
        jobs.Stderr.ShouldContain("there is no location 'no-such-place'");
        history.Stderr.ShouldContain("there is no location 'no-such-place'");
        rollback.Stderr.ShouldContain("there is no location 'no-such-place'");
        deployment.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        unknownRelease.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        ((string)JsonNode.Parse(await unknownRelease.Content.ReadAsStringAsync())!["error"]!).ShouldContain("upload");
        badName.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await Platform.Server.Store.GetLocationAsync("somewhere", CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task A_server_stopped_in_the_middle_of_a_deploy_records_it_failed_after_restart()
    {
        await using var platform = await EmbeddedPlatform.StartAsync(fixture.Workspace.PathTo("platform-restart"));
        var good = await platform.SkiffAsync("deploy", fixture.Hello, "--location", "interrupted", "--json");
        good.ExitCode.ShouldBe(0, good.ToString());
        var hanging = fixture.Variant("restart-hanging", text => text.Replace(
            "return await SkiffApp.RunAsync",
            "if (args.Length > 0) await Task.Delay(Timeout.Infinite);\nreturn await SkiffApp.RunAsync",
            StringComparison.Ordinal));
        var build = await platform.SkiffAsync("build", hanging, "--json");
        build.ExitCode.ShouldBe(0, build.ToString());
        var source = Digest.Parse((string)JsonNode.Parse(build.Stdout)!["source"]!["digest"]!);

        var deploy = platform.SkiffAsync("deploy", hanging, "--location", "interrupted", "--json");
        await WaitForPendingAsync(platform, "interrupted");
        // Cut the server off once the agent holds every blob, so what is interrupted is the
        // activation itself rather than a blob download (which fails differently, and fine too).
        await WaitForSourceMaterializedAsync(platform, source);
        await platform.RestartAsync();
        var interrupted = await deploy;
        var history = await platform.Server.Store.ListDeploymentsAsync("interrupted", 10, CancellationToken.None);
        var location = await platform.Server.Store.GetLocationAsync("interrupted", CancellationToken.None);
        var run = await platform.SkiffAsync("run", "interrupted", "hello");

        interrupted.ExitCode.ShouldNotBe(0);
        // Recorded failed either as the server went down (its agent link dropped first) or on restart
        // (still pending then): never left pending, never live.
        history[0].Outcome.ShouldBe("failed");
        history[0].Error.ShouldNotBeNull().ShouldMatch("server stopped|disconnected");
        location!.LiveRelease.ShouldBe(history[1].Release);
        run.ExitCode.ShouldBe(0, run.ToString());
    }

    private static async Task WaitForSourceMaterializedAsync(EmbeddedPlatform platform, Digest source)
    {
        var folder = Path.Combine(platform.DataDirectory, "agent", "releases", "sources", source.Hex);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!Directory.Exists(folder))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), deadline.Token);
        }
    }

    private static async Task WaitForPendingAsync(EmbeddedPlatform platform, string location)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var history = await platform.Server.Store.ListDeploymentsAsync(location, 1, deadline.Token);
            if (history is [{ Outcome: "pending" }])
            {
                return;
            }

            await Task.Delay(50, deadline.Token);
        }
    }
}
