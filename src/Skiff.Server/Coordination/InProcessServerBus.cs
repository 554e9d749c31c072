using System.Text.Json.Nodes;
using Skiff.Server.Agents;

namespace Skiff.Server.Coordination;

/// <summary>The bus of a server that is alone on its store (SQLite): there is no other server to tell or ask.</summary>
internal sealed class InProcessServerBus(string serverId) : IServerBus
{
    public string ServerId { get; } = serverId;

    // Every change is signaled in process, the moment it is stored.
    public TimeSpan Backstop => Timeout.InfiniteTimeSpan;

    public Func<JsonObject, CancellationToken, Task<JsonObject>>? OnRequest { get; set; }

    public void Subscribe(Action<string, string> handler)
    {
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task PublishAsync(string topic, string key) => Task.CompletedTask;

    public Task<bool> SendAsync(string server, string topic, string body, CancellationToken cancellationToken) => Task.FromResult(false);

    public int MaxBodyBytes(string server, string topic) => 0;

    public Task<JsonObject> RequestAsync(string server, JsonObject request, TimeSpan timeout, CancellationToken cancellationToken) =>
        server == ServerId && OnRequest is { } handle
            ? handle(request, cancellationToken)
            : throw new AgentUnavailableException($"server '{server}' cannot be reached from this one: with SQLite metadata there is one server. Use --metadata postgres://… to run several.");

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
