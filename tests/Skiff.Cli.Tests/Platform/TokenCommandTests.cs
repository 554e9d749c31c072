using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Skiff.Cli.Tests.Platform;

/// <summary><c>skiff tokens</c> and <c>skiff audit</c> against a real platform, with a real deploy made with a scoped token.</summary>
public sealed class TokenCommandTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private EmbeddedPlatform Platform => fixture.Platform;

    [Fact]
    public async Task A_deploy_token_for_one_location_deploys_there_only_the_audit_names_it_whatever_who_says_and_revoking_it_locks_it_out()
    {
        var create = await Platform.SkiffAsync("tokens", "create", "ci", "--role", "deploy", "--location", "tok-a", "--json");
        create.ExitCode.ShouldBe(0, create.ToString());
        var secret = (string)JsonNode.Parse(create.Stdout)!["secret"]!;

        var deploy = await Platform.SkiffAsync("deploy", fixture.Hello, "--location", "tok-a", "--json", "--token", secret);
        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        var release = (string)JsonNode.Parse(deploy.Stdout)!["release"]!;
        // Elsewhere: the same release to another location (a second `skiff deploy` would only build again), and a rollback there.
        using var http = Platform.Http(secret);
        var elsewhere = await http.PostAsJsonAsync("api/v1/deployments", new { location = "tok-b", release });
        var rollback = await Platform.SkiffAsync("rollback", "tok-b", "--token", secret);
        // A project that cannot even compile: refused for the token before anything is built, or it would fail to build.
        var unbuildable = fixture.Variant("tok-unbuildable", text => text + "\nthis does not compile");
        var deployElsewhere = await Platform.SkiffAsync("deploy", unbuildable, "--location", "tok-b", "--token", secret);
        // A client that claims to be someone else: the claim is kept as the declared author, the audit names the token.
        var claimed = await http.PostAsJsonAsync("api/v1/deployments", new { location = "tok-a", release, who = "mallory@elsewhere" });
        var list = await Platform.SkiffAsync("tokens", "list");
        var audit = await Platform.SkiffAsync("audit", "--location", "tok-a", "--json");
        var revoke = await Platform.SkiffAsync("tokens", "revoke", "ci");
        var afterRevoke = await Platform.SkiffAsync("locations", "--token", secret);
        var badRole = await Platform.SkiffAsync("tokens", "create", "x", "--role", "root");
        var gc = await Platform.SkiffAsync("gc");
        var all = await Platform.SkiffAsync("audit", "--limit", "3");

        elsewhere.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        ((string)(await elsewhere.Content.ReadFromJsonAsync<JsonObject>())!["error"]!).ShouldContain("may not act on or read location 'tok-b'");
        rollback.ExitCode.ShouldNotBe(0, rollback.ToString());
        rollback.Stderr.ShouldContain("may not act on or read location 'tok-b'");
        deployElsewhere.ExitCode.ShouldNotBe(0, deployElsewhere.ToString());
        deployElsewhere.Stderr.ShouldContain("may not act on or read location 'tok-b'");
        deployElsewhere.ToString().ShouldNotContain("error CS", customMessage: "nothing was built");
        (await Platform.Server.Store.GetLocationAsync("tok-b", CancellationToken.None)).ShouldBeNull();
        claimed.StatusCode.ShouldBe(HttpStatusCode.OK, await claimed.Content.ReadAsStringAsync());
        var claimedId = (string)(await claimed.Content.ReadFromJsonAsync<JsonObject>())!["deployment"]!;
        (await Platform.Server.Store.GetDeploymentAsync(claimedId, CancellationToken.None))!.Who.ShouldBe("mallory@elsewhere");
        list.ExitCode.ShouldBe(0, list.ToString());
        list.Stdout.ShouldContain("ci");
        list.Stdout.ShouldContain("tok-a");
        list.Stdout.ShouldNotContain(secret);
        var entries = JsonNode.Parse(audit.Stdout)!.AsArray();
        entries.Select(e => ((string)e!["token"]!, (string)e["action"]!, (string?)e["detail"])).ShouldBe(
        [
            ("ci", "deploy", claimedId),
            ("ci", "deploy", (string)JsonNode.Parse(deploy.Stdout)!["deployment"]!),
        ]);
        revoke.ExitCode.ShouldBe(0, revoke.ToString());
        revoke.Stdout.ShouldContain("token 'ci' revoked");
        afterRevoke.ExitCode.ShouldNotBe(0);
        afterRevoke.Stderr.ShouldContain("401");
        badRole.ExitCode.ShouldBe(2, badRole.ToString());
        gc.ExitCode.ShouldBe(0, gc.ToString());
        var table = all.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        table[0].ShouldStartWith("WHEN");
        table[1].ShouldContain(" server ");
        table[1].ShouldContain(" gc ");
        table[2].ShouldContain(" token.revoke ");
        table[2].ShouldContain(" ci");
    }
}
