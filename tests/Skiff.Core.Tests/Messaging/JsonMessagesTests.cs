using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Skiff.Core.Messaging;

namespace Skiff.Core.Tests.Messaging;

/// <summary>The agent protocol's framing, over a real WebSocket on a loopback TCP connection.</summary>
public sealed class JsonMessagesTests
{
    [Fact]
    public async Task Reads_whole_messages_across_frames_drops_what_is_not_an_object_and_ends_at_close()
    {
        var (client, server) = await ConnectAsync();
        using (client)
        using (server)
        {
            await SendTextAsync(client, "not json at all", endOfMessage: true);
            await SendTextAsync(client, "{\"type\":\"run_stored\",", endOfMessage: false);
            await SendTextAsync(client, "\"run\":\"r-1\"}", endOfMessage: true);
            await SendTextAsync(client, "[1, 2]", endOfMessage: true);
            await SendTextAsync(client, "{\"type\":\"launch\",\"request\":3}", endOfMessage: true);
            await JsonMessages.SendAsync(client, new CancelRunRequest("r-2") { Request = 4 }, CancellationToken.None);
            await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);

            var received = new List<AgentMessage>();
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await foreach (var message in JsonMessages.ReadAsync(server, deadline.Token))
            {
                received.Add(message);
            }

            received.ShouldBe([
                new RunStoredNotice("r-1"),
                new UnreadableMessage("launch", "unknown_type", "'launch' is not a message of agent protocol 4") { Request = 3 },
                new CancelRunRequest("r-2") { Request = 4 },
            ]);
        }
    }

    private static Task SendTextAsync(WebSocket socket, string text, bool endOfMessage) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage, CancellationToken.None);

    private static async Task<(WebSocket Client, WebSocket Server)> ConnectAsync()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accepting = listener.AcceptTcpClientAsync();
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var accepted = await accepting;
        return (
            WebSocket.CreateFromStream(client.GetStream(), new WebSocketCreationOptions { IsServer = false }),
            WebSocket.CreateFromStream(accepted.GetStream(), new WebSocketCreationOptions { IsServer = true }));
    }
}
