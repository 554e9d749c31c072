using System.Collections;
using System.Diagnostics;

namespace Skiff.Agent;

/// <summary>The agent's spans (docs/traces.md): an activation and its stages, and the start of a run.</summary>
internal static class AgentTraces
{
    public static readonly ActivitySource Source = new("Skiff.Agent", Skiff.Sdk.Protocol.ProtocolInfo.SdkVersion);

    /// <summary>
    /// The agent's own OpenTelemetry settings (<c>OTEL_*</c>) to hand to the job processes it starts. The service name is
    /// not: a job's spans are named for its location, not for the agent.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, string>> ExportVariables() =>
        Environment.GetEnvironmentVariables().Cast<DictionaryEntry>()
            .Select(e => (Key: (string)e.Key, Value: e.Value as string))
            .Where(e => e.Key.StartsWith("OTEL_", StringComparison.Ordinal) && e.Key != "OTEL_SERVICE_NAME" && e.Value is not null)
            .OrderBy(e => e.Key, StringComparer.Ordinal)
            .Select(e => KeyValuePair.Create(e.Key, e.Value!));
}
