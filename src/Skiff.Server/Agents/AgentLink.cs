namespace Skiff.Server.Agents;

/// <summary>A connected agent as a request needs it: its name and the server holding its WebSocket.</summary>
internal sealed record AgentLink(string Name, string Server);
