using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Server.Tests.Webhooks;

/// <summary>/api/v1/webhooks against a real server: what it accepts, and bad input refused with nothing stored.</summary>
public sealed class WebhookEndpointTests(WebhookEndpointTests.Fixture fixture) : IClassFixture<WebhookEndpointTests.Fixture>
{
    [Theory]
    [InlineData("""{"url":"ftp://example.com/hook","events":["run_failed"]}""", 400, "'ftp://example.com/hook' is a ftp: URL; webhooks are POSTed over http or https")]
    [InlineData("""{"url":"file:///etc/passwd","events":["run_failed"]}""", 400, "is a file: URL")]
    [InlineData("""{"url":"/relative/hook","events":["run_failed"]}""", 400, "'/relative/hook' is not an absolute URL")]
    [InlineData("""{"url":"","events":["run_failed"]}""", 400, "the request needs \"url\"")]
    [InlineData("""{"url":"https://example.com/hook","events":["run_exploded"]}""", 400, "'run_exploded' is not a webhook event; use one or more of run_succeeded, run_failed, run_canceled, deploy_live, deploy_failed")]
    [InlineData("""{"url":"https://example.com/hook","events":["run_failed","RUN_FAILED"]}""", 400, "'RUN_FAILED' is not a webhook event")]
    [InlineData("""{"url":"https://example.com/hook","events":[]}""", 400, "the request needs \"events\"")]
    [InlineData("""{"url":"https://example.com/hook"}""", 400, "the request needs \"events\"")]
    [InlineData("""{"url":"https://example.com/hook","events":["run_failed"],"location":"nowhere"}""", 404, "there is no location 'nowhere'")]
    [InlineData("""{"url":"https://example.com/hook","events":["run_failed"],"location":".."}""", 400, "'..' is not a location name")]
    [InlineData("""{"url":"https://example.com/hook","events":["run_failed"],"secret":"mine"}""", 400, "'secret' could not be mapped")]
    public async Task A_bad_subscription_is_refused_saying_what_was_wrong_and_nothing_is_stored(string body, int status, string expected)
    {
        using var response = await fixture.Http.PostAsync("api/v1/webhooks", new StringContent(body, Encoding.UTF8, "application/json"));

        ((int)response.StatusCode).ShouldBe(status);
        ((string?)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]).ShouldNotBeNull().ShouldContain(expected, Case.Sensitive);
        (await fixture.Server.Store.ListWebhookSubscriptionsAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_subscription_is_made_listed_without_its_secret_and_removed()
    {
        using var created = await fixture.Http.PostAsync(
            "api/v1/webhooks",
            new StringContent("""{"url":"https://example.com/hook","events":["run_failed","deploy_live","run_failed"],"location":"billing"}""", Encoding.UTF8, "application/json"));
        created.StatusCode.ShouldBe(HttpStatusCode.Created);
        var answer = JsonNode.Parse(await created.Content.ReadAsStringAsync())!;
        var id = (string)answer["id"]!;
        ((string)answer["secret"]!).ShouldStartWith("whsec_");
        answer["events"]!.AsArray().Select(e => (string?)e).ShouldBe(["run_failed", "deploy_live"]);

        var list = await fixture.Http.GetStringAsync("api/v1/webhooks");
        list.ShouldNotContain("whsec_");
        JsonNode.Parse(list)!.AsArray().Select(w => ((string?)w!["id"], (string?)w["location"], (string?)w["created_by"])).ShouldBe([(id, "billing", "server")]);

        using var removed = await fixture.Http.DeleteAsync($"api/v1/webhooks/{id}");
        removed.StatusCode.ShouldBe(HttpStatusCode.OK);
        using var again = await fixture.Http.DeleteAsync($"api/v1/webhooks/{id}");
        again.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await fixture.Server.Store.ListWebhookSubscriptionsAsync(CancellationToken.None)).ShouldBeEmpty();
        (await fixture.Http.GetStringAsync("api/v1/webhooks/deliveries?limit=5")).ShouldBe("[]");
        using var ofRemoved = await fixture.Http.GetAsync($"api/v1/webhooks/deliveries?subscription={id}");
        ofRemoved.StatusCode.ShouldBe(HttpStatusCode.NotFound, "a subscription that does not exist is not one with nothing sent");
        (await ofRemoved.Content.ReadAsStringAsync()).ShouldContain("skiff webhooks list");
    }

    /// <summary>One server for the class: nothing a test here stores outlives it.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        private readonly Workspace _workspace = new();

        internal RunningServer Server { get; private set; } = null!;

        internal HttpClient Http { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0 }, TimeProvider.System, CancellationToken.None);
            Http = new HttpClient { BaseAddress = Server.Url };
            Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Server.Token);
            await Metadata.Some.LiveDeploymentAsync(Server.Store, "d1", "billing", Metadata.Some.Release());
        }

        public async Task DisposeAsync()
        {
            Http.Dispose();
            await Server.DisposeAsync();
            _workspace.Dispose();
        }
    }
}
