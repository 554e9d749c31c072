using System.Text;
using Skiff.Sdk.Events;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk.Execution;

/// <summary>
/// The run, and the op attempt, that the code running now belongs to: what it writes to the console becomes
/// that run's <c>output</c> events, one per line. It flows with the async context (an <see cref="AsyncLocal{T}"/>),
/// so a task an op starts writes as that op, and two runs served by one process never mix their lines. A Skiff task
/// served in-process writes in its own scope, which also stamps the task (<paramref name="task"/>).
/// </summary>
internal sealed class OutputScope(RunEventStream events, string? op, int? attempt, TaskOrigin? task = null)
{
    /// <summary>A line longer than this is sent in pieces of this size, so one huge write never makes one huge frame.</summary>
    public const int MaxLineChars = 16 * 1024;

    public const string Stdout = "stdout";
    public const string Stderr = "stderr";

    private static readonly AsyncLocal<OutputScope?> CurrentScope = new();

    private readonly Lock _gate = new();
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private bool _closed;

    /// <summary>The scope of the code running now; null outside any run.</summary>
    public static OutputScope? Current => CurrentScope.Value;

    /// <summary>Makes this the scope of the code running from here on in the calling async flow (and what it starts).</summary>
    public OutputScope Enter()
    {
        CurrentScope.Value = this;
        return this;
    }

    /// <summary>Adds written text; each complete line becomes an event. False once closed: the caller writes it elsewhere.</summary>
    public bool Write(string stream, ReadOnlySpan<char> text)
    {
        lock (_gate)
        {
            if (_closed)
            {
                return false;
            }

            var buffer = stream == Stderr ? _stderr : _stdout;
            foreach (var c in text)
            {
                if (c == '\n')
                {
                    EmitLine(stream, buffer);
                }
                else
                {
                    buffer.Append(c);
                    if (buffer.Length >= MaxLineChars)
                    {
                        EmitLine(stream, buffer);
                    }
                }
            }

            return true;
        }
    }

    /// <summary>Sends what is left of unfinished lines and stops taking writes: the op (or run) has ended, and nothing may follow its end event.</summary>
    public void Close()
    {
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            if (_stdout.Length > 0)
            {
                EmitLine(Stdout, _stdout);
            }

            if (_stderr.Length > 0)
            {
                EmitLine(Stderr, _stderr);
            }

            _closed = true;
        }
    }

    private void EmitLine(string stream, StringBuilder buffer)
    {
        if (buffer.Length > 0 && buffer[^1] == '\r')
        {
            buffer.Length--;
        }

        var text = buffer.ToString();
        buffer.Clear();
        var e = new RunEvent { Run = events.RunId, Type = EventTypes.Output, Op = op, Attempt = attempt, Stream = stream, Text = text };
        events.Emit(task is null ? e : task.Stamp(e));
    }
}
