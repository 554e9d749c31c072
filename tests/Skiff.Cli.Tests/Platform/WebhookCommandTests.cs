using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Skiff.Cli.Tests.Platform;

/// <summary><c>skiff webhooks</c> against a real platform: a real deploy and a real run reach a receiver on 127.0.0.1, signed.</summary>
public sealed class WebhookCommandTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>, IAsyncLifetime
{
    private readonly ConcurrentQueue<(string Id, string Timestamp, string Signature, string Body)> _received = new();
    private WebApplication _receiver = null!;
    private string _url = "";

    private EmbeddedPlatform Platform => fixture.Platform;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(System.Net.IPAddress.Loopback, 0));
        _receiver = builder.Build();
        _receiver.MapPost("/hook", async (HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            _received.Enqueue((context.Request.Headers["webhook-id"].ToString(), context.Request.Headers["webhook-timestamp"].ToString(), context.Request.Headers["webhook-signature"].ToString(), body));
            return Results.NoContent();
        });
        await _receiver.StartAsync();
        _url = new Uri(_receiver.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First()) + "hook";
    }

    public async Task DisposeAsync() => await _receiver.DisposeAsync();

    [Fact]
    public async Task A_subscription_made_with_the_cli_gets_a_real_deploy_and_run_signed_and_lists_its_deliveries()
    {
        // Side by side: each is a process start, and none changes anything.
        var refused = await Task.WhenAll(
            Platform.SkiffAsync("webhooks", "add", _url, "--on", "run_exploded"),
            Platform.SkiffAsync("webhooks", "add", _url, "--on", "run_failed", "--location", "nowhere"),
            Platform.SkiffAsync("webhooks", "add", "ftp://127.0.0.1/hook", "--on", "run_failed"));
        var (unknownEvent, unknownLocation, badScheme) = (refused[0], refused[1], refused[2]);
        var add = await Platform.SkiffAsync("webhooks", "add", _url, "--on", "deploy_live", "--on", "run_succeeded");
        add.ExitCode.ShouldBe(0, add.ToString());
        var lines = add.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var id = lines[0].Split(' ')[1].TrimEnd(':');
        var secret = lines[1].Trim();

        var deploy = await Platform.SkiffAsync("deploy", fixture.Hello, "--location", "hooks");
        var run = await Platform.SkiffAsync("run", "hooks", "hello");
        using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while (_received.Count < 2)
            {
                await Task.Delay(50, deadline.Token);
            }
        }

        var deliveries = await Platform.SkiffAsync("webhooks", "deliveries", "--subscription", id);
        var list = await Platform.SkiffAsync("webhooks", "list");
        var remove = await Platform.SkiffAsync("webhooks", "remove", id);
        var listAfter = await Platform.SkiffAsync("webhooks", "list", "--json");

        unknownEvent.ExitCode.ShouldBe(2, unknownEvent.ToString());
        unknownEvent.Stderr.ShouldContain("run_exploded");
        unknownLocation.ExitCode.ShouldNotBe(0, unknownLocation.ToString());
        unknownLocation.Stderr.ShouldContain("there is no location 'nowhere'");
        badScheme.ExitCode.ShouldNotBe(0, badScheme.ToString());
        badScheme.Stderr.ShouldContain("webhooks are POSTed over http or https");
        id.ShouldStartWith("wh-");
        secret.ShouldStartWith("whsec_");
        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        run.ExitCode.ShouldBe(0, run.ToString());
        var received = _received.ToList();
        received.Select(r => (string?)JsonNode.Parse(r.Body)!["type"]).ShouldBe(["deploy_live", "run_succeeded"], ignoreOrder: true);
        received.ShouldAllBe(r => (string?)JsonNode.Parse(r.Body)!["data"]!["location"] == "hooks");
        foreach (var (webhookId, timestamp, signature, body) in received)
        {
            // The Standard Webhooks formula, by hand; the server's tests check it with the spec's own library.
            var key = Convert.FromBase64String(secret["whsec_".Length..]);
            signature.ShouldBe("v1," + Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{webhookId}.{timestamp}.{body}"))));
        }

        deliveries.ExitCode.ShouldBe(0, deliveries.ToString());
        foreach (var (webhookId, _, _, _) in received)
        {
            deliveries.Stdout.ShouldContain(webhookId);
        }

        deliveries.Stdout.ShouldContain("deploy_live");
        deliveries.Stdout.ShouldContain(": delivered");
        deliveries.Stdout.ShouldContain("#1 ");
        list.Stdout.ShouldContain(id);
        list.Stdout.ShouldContain(_url);
        list.Stdout.ShouldNotContain(secret);
        remove.ExitCode.ShouldBe(0, remove.ToString());
        JsonNode.Parse(listAfter.Stdout)!.AsArray().ShouldBeEmpty();
    }
}
