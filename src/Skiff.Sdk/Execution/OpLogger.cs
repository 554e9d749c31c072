using Microsoft.Extensions.Logging;
using Skiff.Sdk.Events;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk.Execution;

/// <summary>
/// Turns an op's log calls into <c>log</c> events: the rendered message, the level, and the message
/// template's named values as structured properties. A task's logger also stamps the task (<paramref name="task"/>).
/// </summary>
internal sealed class OpLogger(RunEventStream events, string op, Func<int> attempt, TaskOrigin? task = null) : ILogger
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

        // A logger's state is a list of its named values (the template itself last, under OriginalFormat).
        var properties = state switch
        {
            IReadOnlyList<KeyValuePair<string, object?>> list => SdkJson.LogProperties(list, OriginalFormat),
            IEnumerable<KeyValuePair<string, object?>> pairs => SdkJson.ToElements(pairs.Where(pair => pair.Key != OriginalFormat)),
            _ => null,
        };
        var e = new RunEvent
        {
            Run = events.RunId,
            Type = EventTypes.Log,
            Op = op,
            Attempt = attempt(),
            Level = LevelName(logLevel),
            Message = formatter(state, exception),
            Properties = properties is { Count: > 0 } ? properties : null,
            Error = exception is null ? null : ErrorInfo.From(exception),
        };
        events.Emit(task is null ? e : task.Stamp(e));
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
