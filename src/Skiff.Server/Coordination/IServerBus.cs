using System.Text.Json.Nodes;

namespace Skiff.Server.Coordination;

/// <summary>
/// How the servers sharing one metadata store tell each other things: short notices ("run r-1 has new
/// events", "a deployment of location x finished") and requests for the one server that can carry them out
/// (the one holding an agent's WebSocket). Everything a notice says is also in the store, so a missed notice
/// only delays a waiter until its next look (<see cref="Backstop"/>); requests are rows, so none is lost.
/// </summary>
/// <remarks>
/// Two implementations: <see cref="InProcessServerBus"/> for SQLite (one server: nobody else to tell) and
/// <see cref="PostgresServerBus"/> on LISTEN/NOTIFY. Not a general message broker: payloads are a topic and a
/// key, and requests are few and small (an activation, a run start, a cancel).
/// </remarks>
internal interface IServerBus : IAsyncDisposable
{
    /// <summary>This server process, as it is recorded in the store (deployments it drives, agents it holds).</summary>
    string ServerId { get; }

    /// <summary>
    /// The longest a waiter should wait for a notice before it looks in the store itself; infinite when every
    /// notice is certain to arrive.
    /// </summary>
    TimeSpan Backstop { get; }

    /// <summary>Called for each notice another server published: topic, key. Handlers must be quick and must not throw.</summary>
    void Subscribe(Action<string, string> handler);

    /// <summary>Handles the requests other servers pass to this one; set once, before <see cref="StartAsync"/>.</summary>
    Func<JsonObject, CancellationToken, Task<JsonObject>>? OnRequest { get; set; }

    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Tells the other servers that something under <paramref name="topic"/>/<paramref name="key"/> changed. Never throws: a notice that cannot be sent is made up for by the backstop.</summary>
    Task PublishAsync(string topic, string key);

    /// <summary>Has <paramref name="server"/> handle <paramref name="request"/> and returns its answer.</summary>
    /// <exception cref="Agents.AgentUnavailableException">The server did not answer within <paramref name="timeout"/>, or its handler failed (the message says why).</exception>
    Task<JsonObject> RequestAsync(string server, JsonObject request, TimeSpan timeout, CancellationToken cancellationToken);
}
