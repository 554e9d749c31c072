using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Skiff.Cli.Logging;

/// <summary>
/// One line per entry for people at a terminal: UTC time, level, the category's short name and event id, the message;
/// an exception follows on the next lines with its stack. <c>2026-11-29T07:32:54.123Z warn  AgentHub[4007] agent …</c>
/// </summary>
internal sealed class ReadableFormatter() : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "skiff";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null)
        {
            return;
        }

        var category = logEntry.Category;
        var shortName = category[(category.LastIndexOf('.') + 1)..];
        textWriter.Write(DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        textWriter.Write(' ');
        textWriter.Write(logEntry.LogLevel switch
        {
            LogLevel.Trace => "trce",
            LogLevel.Debug => "dbug",
            LogLevel.Information => "info",
            LogLevel.Warning => "warn",
            LogLevel.Error => "fail",
            LogLevel.Critical => "crit",
            _ => "none",
        });
        textWriter.Write(' ');
        textWriter.Write(shortName);
        textWriter.Write('[');
        textWriter.Write(logEntry.EventId.Id);
        textWriter.Write("] ");
        // One entry, one line: a message that carries newlines (an agent's crash text) keeps them escaped.
        textWriter.Write(message?.ReplaceLineEndings("\\n"));
        textWriter.Write('\n');
        if (logEntry.Exception is { } exception)
        {
            textWriter.Write(exception.ToString());
            textWriter.Write('\n');
        }
    }
}
