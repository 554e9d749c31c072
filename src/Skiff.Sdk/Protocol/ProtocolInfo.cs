namespace Skiff.Sdk.Protocol;

/// <summary>Versions and limits of the code-server protocol (docs/code-server-protocol.md).</summary>
internal static class ProtocolInfo
{
    public const int Version = 1;

    /// <summary>The largest request frame accepted, in bytes; larger ones get a frame_too_large error.</summary>
    public const int MaxFrameBytes = 1024 * 1024;

    /// <summary>
    /// The largest input or output of a deployed task call, in bytes (its JSON). Input travels in a <c>run_task</c>,
    /// output in a <c>task_result</c>, both requests to a code server: with <see cref="MaxTaskEventBytes"/> of events and
    /// the other fields they stay under <see cref="MaxFrameBytes"/>, which a larger frame would exceed and be dropped.
    /// </summary>
    public const int MaxTaskPayloadBytes = 512 * 1024;

    /// <summary>The most of a deployed task's events, in bytes, that go back to the calling run with its result.</summary>
    public const int MaxTaskEventBytes = 256 * 1024;

    public static string SdkVersion { get; } =
        typeof(ProtocolInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}
