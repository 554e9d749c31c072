using System.Text.Json.Nodes;

namespace Skiff.Agent.CodeServers;

/// <summary>
/// What the agent accepts in a code server's first message (docs/code-server-protocol.md): the protocol
/// versions it can serve. A code server built against an SDK that speaks another one is refused at once,
/// with both versions named, instead of failing later on a message one side does not understand.
/// </summary>
internal static class CodeServerHello
{
    /// <summary>The code-server protocol versions this agent speaks.</summary>
    public static readonly IReadOnlyList<int> SupportedProtocols = [1];

    public static string AgentVersion { get; } = typeof(CodeServerHello).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>Returns <paramref name="hello"/> when this agent can serve its protocol.</summary>
    /// <exception cref="CodeServerException">It names no protocol, or one this agent does not speak.</exception>
    public static JsonObject Check(JsonObject hello, string name)
    {
        var sdk = hello["sdk"] is JsonValue sdkValue && sdkValue.TryGetValue<string>(out var text) ? text : "of unknown version";
        if (hello["protocol"] is not JsonValue value || !value.TryGetValue<int>(out var protocol))
        {
            throw new CodeServerException(
                $"{name} (Skiff.Sdk {sdk}) did not say which code-server protocol it speaks; this agent (skiff {AgentVersion}) serves protocol {Versions()}. Build the project against a Skiff.Sdk of the same release as the agent.",
                "unsupported_protocol");
        }

        if (!SupportedProtocols.Contains(protocol))
        {
            var advice = protocol > SupportedProtocols.Max()
                ? $"upgrade the agent to a skiff release that serves protocol {protocol}, or reference a Skiff.Sdk version that speaks protocol {Versions()}"
                : $"update the project's Skiff.Sdk reference to a version that speaks protocol {Versions()}";
            throw new CodeServerException(
                $"{name} uses Skiff.Sdk {sdk}, which speaks code-server protocol {protocol}; this agent (skiff {AgentVersion}) serves protocol {Versions()} only: {advice}.",
                "unsupported_protocol");
        }

        return hello;
    }

    private static string Versions() => string.Join(" or ", SupportedProtocols);
}
