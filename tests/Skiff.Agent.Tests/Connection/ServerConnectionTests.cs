using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Skiff.Agent.Connection;
using Skiff.Core.Blobs;
using Skiff.Core.Messaging;

namespace Skiff.Agent.Tests.Connection;

/// <summary>The agent's end of the agent protocol (docs/agent-protocol.md), against a server that sends what it likes.</summary>
public sealed class ServerConnectionTests
{
    [Fact]
    public async Task A_request_the_agent_cannot_read_gets_an_error_saying_why_and_the_connection_goes_on()
    {
        using var deadline = new CancellationTokenSource(AgentHarness.Deadline);
        var cache = Directory.CreateTempSubdirectory("skiff-connection-").FullName;
        using var listener = Listen(out var url);
        await using var host = new AgentHost(new AgentOptions { CacheDirectory = cache }, new FileBlobStore(Path.Combine(cache, "store")), TimeProvider.System);
        using var stopAgent = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
        var agent = new ServerConnection(host, url, "token", "tested", TimeProvider.System).RunAsync(stopAgent.Token);
        try
        {
            var context = await listener.GetContextAsync().WaitAsync(deadline.Token);
            using var socket = (await context.AcceptWebSocketAsync(subProtocol: null)).WebSocket;
            var messages = JsonMessages.ReadAsync(socket, deadline.Token).GetAsyncEnumerator(deadline.Token);

            (await NextAsync(messages)).ShouldBeOfType<AgentHello>().Labels.ShouldBeEmpty();
            await SendTextAsync(socket, "{\"type\":\"launch\",\"request\":1}");
            await SendTextAsync(socket, "{\"type\":\"cancel_run\",\"request\":2}");
            await SendTextAsync(socket, "not json");
            await JsonMessages.SendAsync(socket, new ResumeRunsRequest(new Dictionary<string, long>()) { Request = 3 }, deadline.Token);
            var replies = new Dictionary<long, AgentMessage>();
            while (replies.Count < 3)
            {
                var reply = await NextAsync(messages);
                replies[reply.Request ?? 0] = reply;
            }

            replies[1].ShouldBe(new AgentErrorReply("unknown_type", "this agent does not understand 'launch'") { Request = 1 });
            var malformed = replies[2].ShouldBeOfType<AgentErrorReply>();
            (malformed.Code, malformed.Message).ShouldBe(("malformed", "the cancel_run message could not be read: JSON deserialization for type 'Skiff.Core.Messaging.CancelRunRequest' was missing required properties including: 'run'."));
            replies[3].ShouldBeOfType<ResumedReply>().Unknown.ShouldBeEmpty();
        }
        finally
        {
            await stopAgent.CancelAsync();
            await agent;
            Directory.Delete(cache, recursive: true);
        }
    }

    /// <summary>The next message that is not the agent's periodic load.</summary>
    internal static async Task<AgentMessage> NextAsync(IAsyncEnumerator<AgentMessage> messages)
    {
        while (await messages.MoveNextAsync())
        {
            if (messages.Current is not AgentLoad)
            {
                return messages.Current;
            }
        }

        throw new InvalidOperationException("the agent closed the connection");
    }

    private static Task SendTextAsync(WebSocket socket, string text) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);

    /// <summary>An HTTP listener on a free loopback port, standing in for the server's connect endpoint.</summary>
    internal static HttpListener Listen(out Uri url)
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        url = new Uri($"http://127.0.0.1:{port}/");
        var listener = new HttpListener();
        listener.Prefixes.Add(url.ToString());
        listener.Start();
        return listener;
    }
}
