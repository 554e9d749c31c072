namespace Skiff.Agent.CodeServers;

/// <summary>A program to start: with <paramref name="InheritEnvironment"/> false it gets <paramref name="Environment"/> and nothing of the agent's.</summary>
internal sealed record SpawnCommand(string FileName, IReadOnlyList<string> Arguments, string WorkingDirectory, IEnumerable<KeyValuePair<string, string>> Environment, bool InheritEnvironment = true);
