using System.Text.Json.Nodes;
using Skiff.Core;

namespace Skiff.Agent.Locations;

/// <summary>A location as the agent sees it now.</summary>
internal sealed record LocationStatus(string Name, Digest Release, VersionHealth Health, int CodeServerProcessId, int Restarts, JsonArray Definitions, IReadOnlyList<Digest>? Draining = null);
