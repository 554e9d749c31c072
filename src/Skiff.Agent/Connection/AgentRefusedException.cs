using Skiff.Core;

namespace Skiff.Agent.Connection;

/// <summary>
/// A server refused this agent at connect because they speak different versions of the agent protocol. The agent
/// stops rather than retrying, since no retry can succeed until one side is upgraded; the message says which.
/// </summary>
internal sealed class AgentRefusedException(string message) : SkiffException(message);
