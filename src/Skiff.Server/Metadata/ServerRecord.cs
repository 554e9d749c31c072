namespace Skiff.Server.Metadata;

/// <summary>One <c>skiff server</c> process sharing the metadata store, as its heartbeats show it.</summary>
/// <param name="Id">Chosen by the process when it starts; a restarted server is a new one.</param>
/// <param name="StartedAt">Its first heartbeat.</param>
/// <param name="HeartbeatAt">Its latest heartbeat: a server silent for longer than the grace period is taken for dead.</param>
internal sealed record ServerRecord(string Id, DateTimeOffset StartedAt, DateTimeOffset HeartbeatAt);

/// <summary>An agent's connection, as the server holding it recorded it.</summary>
/// <param name="Agent">The agent's name.</param>
/// <param name="Server">The <see cref="ServerRecord.Id"/> of the server whose WebSocket it is connected to.</param>
/// <param name="ConnectedAt">When it connected there.</param>
internal sealed record AgentConnection(string Agent, string Server, DateTimeOffset ConnectedAt);
