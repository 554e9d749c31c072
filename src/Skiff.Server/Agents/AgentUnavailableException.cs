using Skiff.Core;

namespace Skiff.Server.Agents;

/// <summary>No agent is connected to host a location, or the one hosting it went away.</summary>
internal sealed class AgentUnavailableException(string message) : SkiffException(message);
