using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Skiff.Cli.Logging;

/// <summary>
/// <c>--log-format</c> and <c>--log-level</c>, which <c>skiff server</c>, <c>skiff agent</c> and <c>skiff up</c> share
/// (docs/logs.md). Logs go to stderr: stdout carries the lines scripts and tests read (the banner, the JSON line).
/// </summary>
internal sealed class LogOptions
{
    private static readonly string[] Levels = ["trace", "debug", "information", "warning", "error", "critical", "none"];

    public Option<string> Format { get; } = new("--log-format")
    {
        Description = "How log lines look on stderr: text (one readable line per entry) or json (one JSON object per line, for a log collector).",
        DefaultValueFactory = _ => "text",
    };

    public Option<string> Level { get; } = new("--log-level")
    {
        Description = "The least severe entries logged: trace, debug, information, warning, error, critical or none. Others' libraries log from warning up unless this is debug or trace.",
        DefaultValueFactory = _ => "information",
    };

    public LogOptions()
    {
        Format.AcceptOnlyFromAmong("text", "json");
        Level.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { } value && ParseLevel(value) is null)
            {
                result.AddError($"--log-level: '{value}' is not a level; give one of {string.Join(", ", Levels)}.");
            }
        });
    }

    public void AddTo(Command command)
    {
        command.Options.Add(Format);
        command.Options.Add(Level);
    }

    /// <summary>The factory the platform's parts log through; the caller disposes it last, which flushes what is queued.</summary>
    public ILoggerFactory CreateFactory(ParseResult parse)
    {
        var level = ParseLevel(parse.GetValue(Level)!) ?? LogLevel.Information;
        var json = parse.GetValue(Format) == "json";
        return LoggerFactory.Create(logging =>
        {
            logging.SetMinimumLevel(level);
            // Skiff's own lines at the level asked for; the frameworks' (Kestrel, hosting) only when they warn, unless
            // debugging, so the default output is Skiff's story and not the host's chatter.
            logging.AddFilter((category, entryLevel) =>
                entryLevel >= level
                && (category?.StartsWith("Skiff.", StringComparison.Ordinal) == true || level <= LogLevel.Debug || entryLevel >= LogLevel.Warning)
                // The host logs a failed start as an error with a stack; Skiff says why in one line (a port in use) instead.
                && !(category?.StartsWith("Microsoft.Extensions.Hosting", StringComparison.Ordinal) == true && level > LogLevel.Debug));
            logging.Services.Configure<ConsoleLoggerOptions>(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
            if (json)
            {
                logging.AddJsonConsole(format =>
                {
                    format.UseUtcTimestamp = true;
                    format.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
                    format.JsonWriterOptions = new System.Text.Json.JsonWriterOptions { Indented = false };
                });
            }
            else
            {
                logging.AddConsole(console => console.FormatterName = ReadableFormatter.FormatterName);
                logging.AddConsoleFormatter<ReadableFormatter, ConsoleFormatterOptions>();
            }
        });
    }

    private static LogLevel? ParseLevel(string text) => text.Trim().ToLowerInvariant() switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "information" or "info" => LogLevel.Information,
        "warning" or "warn" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "critical" => LogLevel.Critical,
        "none" => LogLevel.None,
        _ => null,
    };
}
