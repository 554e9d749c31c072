using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StandardWebhooks;

namespace Skiff.Server.Tests.Webhooks;

/// <summary>
/// A webhook receiver on 127.0.0.1 as a user would write one: Kestrel, each request verified with the Standard Webhooks
/// library (not Skiff's code) against the secret of the subscription its path names. It answers 500 to the first
/// request it sees of each <c>webhook-id</c> and 204 after, and can be stopped and started again on the same port.
/// </summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private WebApplication? _app;

    /// <summary>Every request received, in arrival order.</summary>
    public ConcurrentQueue<ReceivedWebhook> Received { get; } = new();

    /// <summary>The secret of each subscription, by the path segment its URL ends with.</summary>
    public ConcurrentDictionary<string, string> Secrets { get; } = new(StringComparer.Ordinal);

    public int Port { get; private set; }

    public string Url(string path) => $"http://127.0.0.1:{Port}/{path}";

    /// <summary>Listens on <paramref name="port"/> (0: a free one, kept for the next start).</summary>
    public async Task StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(System.Net.IPAddress.Loopback, port));
        var app = builder.Build();
        app.MapPost("/{path}", async (string path, HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            var id = context.Request.Headers["webhook-id"].ToString();
            bool valid;
            try
            {
                new StandardWebhook(Secrets[path]).Verify(body, context.Request.Headers);
                valid = true;
            }
            catch (Exception exception) when (exception is StandardWebhooks.Diagnostics.WebhookVerificationException or KeyNotFoundException)
            {
                valid = false;
            }

            var status = Received.Any(r => r.Id == id) ? StatusCodes.Status204NoContent : StatusCodes.Status500InternalServerError;
            Received.Enqueue(new ReceivedWebhook(path, id, body, valid, status));
            return Results.StatusCode(status);
        });
        await app.StartAsync();
        Port = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First()).Port;
        _app = app;
    }

    /// <summary>Stops listening: connections to the port are refused until <see cref="StartAsync"/>.</summary>
    public async Task StopAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());
}

/// <summary>One request as received.</summary>
/// <param name="Path">The subscription it was sent to.</param>
/// <param name="Id">Its <c>webhook-id</c>.</param>
/// <param name="Body">Its body.</param>
/// <param name="Valid">Whether the library accepted its signature and timestamp.</param>
/// <param name="Status">What the receiver answered.</param>
internal sealed record ReceivedWebhook(string Path, string Id, string Body, bool Valid, int Status);
