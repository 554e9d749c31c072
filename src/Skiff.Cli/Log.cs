using Microsoft.Extensions.Logging;

namespace Skiff.Cli;

/// <summary>
/// The log lines of the <c>skiff</c> process itself when it runs the platform (docs/logs.md): 11xx, beside the
/// server's 1xxx hosting events. The server and the agent log their own (Skiff.Server.Log, Skiff.Agent.Log).
/// </summary>
internal static partial class Log
{
    [LoggerMessage(1100, LogLevel.Information, "skiff {Command} is stopping")]
    public static partial void Stopping(ILogger logger, string command);

    [LoggerMessage(1101, LogLevel.Warning, "the agent dropped {Count} damaged folder(s) from its cache; they will be unpacked again")]
    public static partial void CacheRepaired(ILogger logger, int count);
}
