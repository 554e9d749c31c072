using System.Globalization;
using System.Text;
using System.Text.Json;
using Skiff.Sdk.Events;

namespace Skiff.Sdk.Local;

/// <summary>Prints a run's events for a person at a terminal: one line each, time first.</summary>
internal sealed class ConsoleEventWriter(TextWriter output)
{
    public void Write(RunEvent e) =>
        output.WriteLine($"{e.Ts.ToLocalTime().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)}  {Text(e)}");

    /// <summary>
    /// The line of an event after its time. The CLI prints a deployed run's task events with it (Skiff.Cli's
    /// EventPrinter), so a task reads the same whether a local run or a pool served it.
    /// </summary>
    internal static string Text(RunEvent e)
    {
        var line = new StringBuilder();
        switch (e.Type)
        {
            case EventTypes.RunStarted:
                line.Append($"run {e.Run} started: {e.Job}");
                if (e.Parameters is { Count: > 0 } parameters)
                {
                    line.Append(' ').Append(Properties(parameters));
                }

                break;
            case EventTypes.RunSucceeded:
                line.Append($"run succeeded in {e.DurationMs} ms");
                break;
            case EventTypes.RunFailed:
                line.Append($"run failed in {e.DurationMs} ms: {e.Reason}");
                break;
            case EventTypes.RunCanceled:
                line.Append($"run canceled after {e.DurationMs} ms");
                break;
            case EventTypes.OpStarted:
                line.Append($"{e.Op,-16} started").Append(e.Attempt > 1 ? $" (attempt {e.Attempt})" : "");
                break;
            case EventTypes.OpSucceeded:
                line.Append($"{e.Op,-16} succeeded in {e.DurationMs} ms");
                break;
            case EventTypes.OpFailed:
                line.Append($"{e.Op,-16} FAILED: {Error(e.Error)}");
                if (e.Error?.Stack is { } stack)
                {
                    line.AppendLine().Append(Indent(stack));
                }

                break;
            case EventTypes.OpRetrying:
                line.Append($"{e.Op,-16} attempt {e.Attempt} failed ({e.Error?.Message}); retrying in {e.DelayMs} ms");
                break;
            case EventTypes.OpCanceled:
                line.Append($"{e.Op,-16} canceled");
                break;
            case EventTypes.OpSkipped:
                line.Append($"{e.Op,-16} skipped: {e.Reason}");
                break;
            case EventTypes.TaskStarted:
                line.Append($"{Who(e),-16} started (task {e.TaskId}{(e.TaskAttempt > 1 ? $", attempt {e.TaskAttempt}" : "")}{(e.Pin is null ? "" : $", pinned to {e.Pin}")})");
                if (e.Worker is not null)
                {
                    // Where a deployed call ran: each attempt (and each delivery, after a worker died) says so.
                    line.Append($" [pool {e.Pool} @ agent {e.Worker}{(e.Release is { } release ? $", release {ShortRelease(release)}" : "")}{(e.Delivery > 1 ? $", delivery {e.Delivery}{(e.RedeliveryReason is { } reason ? $": {reason}" : "")}" : "")}]");
                }

                break;
            case EventTypes.TaskSucceeded:
                line.Append($"{Who(e),-16} succeeded in {e.DurationMs} ms");
                break;
            case EventTypes.TaskFailed:
                line.Append($"{Who(e),-16} FAILED: {Error(e.Error)}");
                break;
            case EventTypes.TaskRetrying:
                line.Append($"{Who(e),-16} attempt {e.TaskAttempt} failed ({e.Error?.Message}); retrying in {e.DelayMs} ms");
                break;
            case EventTypes.TaskCanceled:
                line.Append($"{Who(e),-16} canceled");
                break;
            case EventTypes.Log:
                line.Append($"{Who(e),-16} {e.Level,-5} {e.Message}");
                if (e.Error is { } error)
                {
                    line.Append($" ({error.Type}: {error.Message})");
                }

                break;
            case EventTypes.Progress:
                line.Append(CultureInfo.InvariantCulture, $"{Who(e),-16} {e.Fraction * 100,3:0}%").Append(e.Message is null ? "" : "  " + e.Message);
                break;
            case EventTypes.Output:
                line.Append($"{(e.Task is null ? e.Op ?? "(run)" : Who(e)),-16} {e.Stream,-6} {e.Text}");
                break;
            case EventTypes.Metadata:
                line.Append($"{e.Op,-16} metadata {Properties(e.Metadata!)}");
                break;
            default:
                line.Append(e.Type);
                break;
        }

        return line.ToString();
    }

    /// <summary>Who an event is from: its op, or for a task's events the op and the task it called (<c>mesh > meshing/reconstruct</c>).</summary>
    private static string? Who(RunEvent e) => e.Task is null ? e.Op : $"{e.Op} > {e.Pool}/{e.Task}";

    /// <summary>
    /// An error as <c>Type: message</c>, or the message alone when it has no type: an error the platform gave (a call
    /// refused by the pool's agent, a task dead-lettered by its queue) comes from no exception.
    /// </summary>
    private static string Error(ErrorInfo? error) =>
        string.IsNullOrEmpty(error?.Type) ? error?.Message ?? "" : $"{error.Type}: {error.Message}";

    /// <summary>A release as <c>skiff history</c> shows it: the first 12 hex digits of its digest.</summary>
    private static string ShortRelease(string release)
    {
        var hex = release.StartsWith("sha256:", StringComparison.Ordinal) ? release["sha256:".Length..] : release;
        return hex.Length > 12 ? hex[..12] : hex;
    }

    private static string Properties(IReadOnlyDictionary<string, JsonElement> values) =>
        string.Join(' ', values.Select(pair => $"{pair.Key}={(pair.Value.ValueKind == JsonValueKind.String ? pair.Value.GetString() : pair.Value.GetRawText())}"));

    private static string Indent(string text) =>
        string.Join(Environment.NewLine, text.Split('\n').Select(l => "      " + l.TrimEnd('\r')));
}
