using System.Text;
using System.Text.Json;
using Skiff.Sdk.Protocol;

namespace Skiff.Agent.CodeServers;

/// <summary>
/// What the agent accepts in a code server's first message (docs/code-server-protocol.md): the protocol
/// versions it can serve. A code server built against an SDK that speaks another one is refused at once,
/// with both versions named, instead of failing later on a message one side does not understand.
/// </summary>
internal static class CodeServerHello
{
    /// <summary>The code-server protocol versions this agent speaks: that of the SDK it was built with.</summary>
    public static readonly IReadOnlyList<int> SupportedProtocols = [ProtocolInfo.Version];

    public static string AgentVersion { get; } = typeof(CodeServerHello).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>The hello in <paramref name="line"/> (one frame, without its newline), when this agent can serve its protocol.</summary>
    /// <exception cref="CodeServerException">It is not a hello, names no protocol, or one this agent does not speak.</exception>
    public static HelloMessage Check(byte[] line, string name)
    {
        // The one message read loosely: it may come from an SDK of any version, and which protocol it speaks is
        // all that can be relied on before it is known.
        var (protocol, sdk) = Versions(line) ?? throw new CodeServerException(
            $"{name}: the code server's first message was not hello: {Encoding.UTF8.GetString(line)}", "unsupported_protocol");
        sdk ??= "of unknown version";
        if (protocol is not { } version)
        {
            throw new CodeServerException(
                $"{name} (Skiff.Sdk {sdk}) did not say which code-server protocol it speaks; this agent (skiff {AgentVersion}) serves protocol {Supported()}. Build the project against a Skiff.Sdk of the same release as the agent.",
                "unsupported_protocol");
        }

        if (!SupportedProtocols.Contains(version))
        {
            var advice = version > SupportedProtocols.Max()
                ? $"upgrade the agent to a skiff release that serves protocol {version}, or reference a Skiff.Sdk version that speaks protocol {Supported()}"
                : $"update the project's Skiff.Sdk reference to a version that speaks protocol {Supported()}";
            throw new CodeServerException(
                $"{name} uses Skiff.Sdk {sdk}, which speaks code-server protocol {version}; this agent (skiff {AgentVersion}) serves protocol {Supported()} only: {advice}.",
                "unsupported_protocol");
        }

        try
        {
            return JsonSerializer.Deserialize(line, ProtocolJson.Wire.CodeServerMessage) as HelloMessage
                ?? throw new JsonException("it is not a hello message");
        }
        catch (JsonException exception)
        {
            throw new CodeServerException($"{name} (Skiff.Sdk {sdk}) sent a hello this agent cannot read ({exception.Message}): {Encoding.UTF8.GetString(line)}", "unsupported_protocol");
        }
    }

    /// <summary>The protocol (null unless a number) and SDK version a hello names; null when the line is not a hello at all.</summary>
    private static (int? Protocol, string? Sdk)? Versions(byte[] line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var hello = document.RootElement;
            if (hello.ValueKind != JsonValueKind.Object || !hello.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "hello")
            {
                return null;
            }

            int? protocol = hello.TryGetProperty("protocol", out var p) && p.ValueKind == JsonValueKind.Number && p.TryGetInt32(out var number) ? number : null;
            var sdk = hello.TryGetProperty("sdk", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            return (protocol, sdk);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Supported() => string.Join(" or ", SupportedProtocols);
}
