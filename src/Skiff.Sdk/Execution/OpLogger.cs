using Microsoft.Extensions.Logging;
using Skiff.Sdk.Events;

namespace Skiff.Sdk.Execution;

/// <summary>
/// Turns an op's log calls into <c>log</c> events: the rendered message, the level, and the message
/// template's named values as structured properties.
/// </summary>
internal sealed class OpLogger(RunEventStream events, string op, Func<int> attempt) : ILogger
{
    private const string OriginalFormat = "{OriginalFormat}";

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }

        var properties = state is IEnumerable<KeyValuePair<string, object?>> pairs
            ? SdkJson.ToElements(pairs.Where(pair => pair.Key != OriginalFormat))
            : null;
        events.Emit(new RunEvent
        {
            Run = events.RunId,
            Type = EventTypes.Log,
            Op = op,
            Attempt = attempt(),
            Level = LevelName(logLevel),
            Message = formatter(state, exception),
            Properties = properties is { Count: > 0 } ? properties : null,
            Error = exception is null ? null : ErrorInfo.From(exception),
        });
    }

    private static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "error",
        _ => "critical",
    };
}
