using Skiff.Core;

namespace Skiff.Agent.Sandboxing;

/// <summary>The agent was asked to sandbox its locations and cannot; it hosts nothing rather than host them unisolated.</summary>
internal sealed class SandboxUnavailableException(string reason)
    : SkiffException(
        $"this agent cannot sandbox locations: {reason}. Install bubblewrap and run the agent as root (scripts/sandbox.sh install does the first), " +
        "or start it with --no-sandbox to host without isolation: every location can then read the agent's and the server's data, tokens included.");
