using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Skiff.Agent.CodeServers;
using Skiff.Agent.Limits;
using Skiff.Agent.Locations;
using Skiff.Core;

namespace Skiff.Agent.Connection;

/// <summary>
/// Keeps an agent connected to its server over one WebSocket: the server pushes assignments (activate a
/// release, start or cancel a run) the moment it has them, and the agent streams back outcomes, run events
/// and reports. No polling interval anywhere in the path. Reconnects with backoff when the connection drops;
/// on each connect the server re-sends what this agent should be running. See docs/agent-protocol.md.
/// </summary>
internal sealed class ServerConnection(AgentHost host, Uri server, string token, string agentName, TimeProvider time)
{
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private ClientWebSocket? _socket;

    /// <summary>Runs until canceled, reconnecting as needed.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var reports = ForwardReportsAsync(cancellationToken);
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using var socket = new ClientWebSocket();
                socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
                socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
                var scheme = server.Scheme == "https" ? "wss" : "ws";
                var uri = new UriBuilder(server) { Scheme = scheme, Path = server.AbsolutePath.TrimEnd('/') + "/api/v1/agents/connect", Query = "name=" + Uri.EscapeDataString(agentName) }.Uri;
                await socket.ConnectAsync(uri, cancellationToken).ConfigureAwait(false);
                _socket = socket;
                backoff = TimeSpan.FromMilliseconds(200);
                await ReceiveLoopAsync(socket, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is WebSocketException or HttpRequestException or IOException)
            {
                // The server is down or restarting; try again shortly.
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            finally
            {
                _socket = null;
            }

            try
            {
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5000));
        }

        await reports.ConfigureAwait(false);
    }

    private async Task ReceiveLoopAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (socket.State == WebSocketState.Open)
        {
            var result = await socket.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return;
            }

            message.Write(buffer, 0, result.Count);
            if (!result.EndOfMessage)
            {
                continue;
            }

            JsonObject? json;
            try
            {
                json = JsonNode.Parse(message.ToArray()) as JsonObject;
            }
            catch (System.Text.Json.JsonException)
            {
                // A garbled assignment is dropped, not the connection; the server's request times out.
                json = null;
            }

            message.SetLength(0);
            if (json is not null)
            {
                // Each assignment runs on its own: a slow activation must not hold up a cancel.
                _ = Task.Run(() => HandleAsync(json, cancellationToken), CancellationToken.None);
            }
        }
    }

    private async Task HandleAsync(JsonObject message, CancellationToken cancellationToken)
    {
        var request = message["request"]?.DeepClone();
        try
        {
            switch ((string?)message["type"])
            {
                case "activate":
                    await ActivateAsync(request, message, cancellationToken).ConfigureAwait(false);
                    break;
                case "start_run":
                    await StartRunAsync(request, message, cancellationToken).ConfigureAwait(false);
                    break;
                case "cancel_run":
                    await host.CancelRunAsync((string)message["run"]!, cancellationToken).ConfigureAwait(false);
                    await SendAsync(new JsonObject { ["type"] = "ok", ["request"] = request }, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    await SendAsync(new JsonObject { ["type"] = "error", ["request"] = request, ["code"] = "unknown_type", ["message"] = $"this agent does not understand '{(string?)message["type"]}'" }, cancellationToken).ConfigureAwait(false);
                    break;
            }
        }
        catch (CodeServerException exception)
        {
            await SendAsync(new JsonObject { ["type"] = "error", ["request"] = request, ["code"] = exception.Code ?? "failed", ["message"] = exception.Message }, cancellationToken).ConfigureAwait(false);
        }
        catch (SkiffException exception)
        {
            await SendAsync(new JsonObject { ["type"] = "error", ["request"] = request, ["code"] = "failed", ["message"] = exception.Message }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // Anything else (a blob fetch that failed, a full disk, a message missing a field) still gets an
            // answer, so the server reports it instead of waiting out its timeout.
            await SendAsync(new JsonObject { ["type"] = "error", ["request"] = request, ["code"] = "failed", ["message"] = $"{exception.GetType().Name}: {exception.Message}" }, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task ActivateAsync(JsonNode? request, JsonObject message, CancellationToken cancellationToken)
    {
        LocationSettings? settings = null;
        if ((string?)message["memory_limit"] is { Length: > 0 } limit)
        {
            settings = LocationSettings.Default with { MemoryLimit = MemoryLimit.Parse(limit) };
        }

        var result = await host.ActivateAsync((string)message["location"]!, Digest.Parse((string)message["release"]!), settings, cancellationToken).ConfigureAwait(false);
        await SendAsync(new JsonObject
        {
            ["type"] = "activated",
            ["request"] = request,
            ["location"] = result.Location,
            ["release"] = result.Release.ToString(),
            ["succeeded"] = result.Succeeded,
            ["error"] = result.Error,
            ["definitions"] = result.Definitions?.DeepClone(),
            ["timings_ms"] = new JsonObject
            {
                ["fetch"] = (long)result.Timings.Fetch.TotalMilliseconds,
                ["materialize"] = (long)result.Timings.Materialize.TotalMilliseconds,
                ["process_start"] = (long)result.Timings.ProcessStart.TotalMilliseconds,
                ["ready"] = (long)result.Timings.Ready.TotalMilliseconds,
                ["total"] = (long)result.Timings.Total.TotalMilliseconds,
            },
            ["blobs_fetched"] = result.BlobsFetched,
        }, cancellationToken).ConfigureAwait(false);
    }

    private async Task StartRunAsync(JsonNode? request, JsonObject message, CancellationToken cancellationToken)
    {
        var runId = (string)message["run"]!;
        var location = (string)message["location"]!;
        if ((string?)message["release"] is { } release && host.Describe(location)?.Release.ToString() != release)
        {
            // This agent has just (re)connected and not caught up yet: bring the location's release up first.
            var activation = await host.ActivateAsync(location, Digest.Parse(release), null, cancellationToken).ConfigureAwait(false);
            if (!activation.Succeeded)
            {
                throw new CodeServerException(activation.Error!, "activation_failed");
            }
        }

        var run = await host.StartRunAsync((string)message["location"]!, (string)message["job"]!, message["params"]?.DeepClone() as JsonObject, runId, cancellationToken).ConfigureAwait(false);
        await SendAsync(new JsonObject { ["type"] = "run_started", ["request"] = request, ["run"] = runId, ["release"] = host.Describe((string)message["location"]!)?.Release.ToString() }, cancellationToken).ConfigureAwait(false);
        await foreach (var runEvent in run.Events.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await SendAsync(new JsonObject { ["type"] = "run_event", ["run"] = runId, ["event"] = runEvent.DeepClone() }, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task ForwardReportsAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var report in host.Reports.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                await SendAsync(new JsonObject
                {
                    ["type"] = "report",
                    ["location"] = report.Location,
                    ["release"] = report.Release.ToString(),
                    ["kind"] = report.Kind.ToString(),
                    ["message"] = report.Message,
                    ["at"] = report.At.ToString("O"),
                }, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task SendAsync(JsonObject message, CancellationToken cancellationToken)
    {
        var bytes = Encoding.UTF8.GetBytes(message.ToJsonString());
        await _sendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_socket is { State: WebSocketState.Open } socket)
            {
                await socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception exception) when (exception is WebSocketException or IOException)
        {
            // The connection dropped; the receive loop reconnects and the server re-sends what matters.
        }
        finally
        {
            _sendGate.Release();
        }
    }
}
