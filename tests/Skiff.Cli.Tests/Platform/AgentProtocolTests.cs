using System.Net;
using System.Net.WebSockets;
using Skiff.Agent;
using Skiff.Agent.Blobs;
using Skiff.Agent.Connection;
using Skiff.Core.Messaging;

namespace Skiff.Cli.Tests.Platform;

/// <summary>The agent-protocol version checked at connect (docs/agent-protocol.md): a mismatched agent is refused, and says so.</summary>
public sealed class AgentProtocolTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_server_refuses_an_agent_of_another_protocol_before_the_handshake_naming_what_to_upgrade()
    {
        var platform = fixture.Platform;
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer " + platform.Token);
        socket.Options.CollectHttpResponseDetails = true;
        var uri = new UriBuilder(platform.Url) { Scheme = "ws", Path = "/api/v1/agents/connect", Query = $"name=future&protocol={AgentProtocol.Version + 1}" }.Uri;

        await Should.ThrowAsync<WebSocketException>(() => socket.ConnectAsync(uri, new CancellationTokenSource(Deadline).Token));

        socket.HttpStatusCode.ShouldBe((HttpStatusCode)426);
        socket.HttpResponseHeaders![AgentProtocol.RefusalHeader].Single().ShouldBe(
            $"agent 'future' speaks agent protocol {AgentProtocol.Version + 1}; this server (skiff {AgentProtocol.SkiffVersion}) speaks agent protocol 2, 3 or {AgentProtocol.Version} only: " +
            $"upgrade the server to a skiff release that speaks protocol {AgentProtocol.Version + 1}, or run the agent from the server's release (skiff {AgentProtocol.SkiffVersion}).");
    }

    [Fact]
    public async Task An_agent_the_server_refuses_stops_with_the_servers_reason_instead_of_retrying()
    {
        var platform = fixture.Platform;
        using var http = new HttpClient();
        await using var host = new AgentHost(
            new AgentOptions { CacheDirectory = fixture.Workspace.PathTo("refused-agent") },
            new HttpBlobSource(http, platform.Url, platform.Token),
            TimeProvider.System);
        // Version 2 is still served (it differs only in sending each run event on its own); 1 is not.
        var connection = new ServerConnection(host, platform.Url, platform.Token, "old", TimeProvider.System) { Protocol = 1 };

        var refused = await Should.ThrowAsync<AgentRefusedException>(() => connection.RunAsync(new CancellationTokenSource(Deadline).Token));

        refused.Message.ShouldBe(
            $"the server at {platform.Url} refused this agent (skiff {AgentProtocol.SkiffVersion}, agent protocol 1): " +
            $"agent 'old' speaks agent protocol 1; this server (skiff {AgentProtocol.SkiffVersion}) speaks agent protocol 2, 3 or {AgentProtocol.Version} only: " +
            $"upgrade the agent to the server's release (skiff {AgentProtocol.SkiffVersion}).");
    }
}
