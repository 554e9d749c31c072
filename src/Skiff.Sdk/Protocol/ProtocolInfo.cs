namespace Skiff.Sdk.Protocol;

/// <summary>Versions and limits of the code-server protocol (docs/code-server-protocol.md).</summary>
internal static class ProtocolInfo
{
    public const int Version = 1;

    /// <summary>The largest request frame accepted, in bytes; larger ones get a frame_too_large error.</summary>
    public const int MaxFrameBytes = 1024 * 1024;

    public static string SdkVersion { get; } =
        typeof(ProtocolInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}
