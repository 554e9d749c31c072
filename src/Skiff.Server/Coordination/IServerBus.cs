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
/// key, requests are few and small (an activation, a run start, a cancel), and what one server sends another alone
/// (<see cref="SendAsync"/>: a task's live events) fits in one notice and may be lost.
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

    /// <summary>
    /// Called for each notice another server published (topic, key), and for each message another server sent to this
    /// one alone with <see cref="SendAsync"/> (topic, body). Handlers must be quick and must not throw.
    /// </summary>
    void Subscribe(Action<string, string> handler);

    /// <summary>Handles the requests other servers pass to this one; set once, before <see cref="StartAsync"/>.</summary>
    Func<JsonObject, CancellationToken, Task<JsonObject>>? OnRequest { get; set; }

    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Tells the other servers that something under <paramref name="topic"/>/<paramref name="key"/> changed. Never throws: a notice that cannot be sent is made up for by the backstop.</summary>
    Task PublishAsync(string topic, string key);

    /// <summary>
    /// Hands <paramref name="body"/> under <paramref name="topic"/> to the handlers of <paramref name="server"/> alone, for
    /// what is worth having only now (a task's live events): nothing is stored, so it is lost when that server does not
    /// hear it at once (it is restarting, or its listener reconnects). What one server sends is heard in the order it was
    /// sent, when each send is awaited before the next. False when it was not sent: the body is longer than
    /// <see cref="MaxBodyBytes"/>, there is no such server to reach, or the store could not take it.
    /// </summary>
    Task<bool> SendAsync(string server, string topic, string body, CancellationToken cancellationToken);

    /// <summary>The longest body, in UTF-8 bytes, that <see cref="SendAsync"/> carries to <paramref name="server"/> under <paramref name="topic"/>.</summary>
    int MaxBodyBytes(string server, string topic);

    /// <summary>Has <paramref name="server"/> handle <paramref name="request"/> and returns its answer.</summary>
    /// <exception cref="Agents.AgentUnavailableException">The server did not answer within <paramref name="timeout"/>, or its handler failed (the message says why).</exception>
    Task<JsonObject> RequestAsync(string server, JsonObject request, TimeSpan timeout, CancellationToken cancellationToken);
}
