using System.Text.Json.Nodes;

namespace Skiff.Agent.CodeServers;

/// <summary>
/// What a version's code server listed: its jobs, and the tasks it serves (null when it declares none, which is also
/// what a code server older than tasks says). As JSON, because the agent only passes them on to the server, which
/// stores them as sent.
/// </summary>
internal sealed record VersionDefinitions(JsonArray Jobs, JsonArray? Tasks);
