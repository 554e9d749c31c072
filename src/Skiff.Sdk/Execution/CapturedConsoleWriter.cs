using System.Text;

namespace Skiff.Sdk.Execution;

/// <summary>
/// Stands in for <see cref="Console.Out"/> or <see cref="Console.Error"/>: text written while a run's code is
/// running goes into that run's events (<see cref="OutputScope"/>); anything else goes where it always went.
/// </summary>
internal sealed class CapturedConsoleWriter(string stream, TextWriter fallback) : TextWriter
{
    // Set while this thread hands a line to the run's event listener: a listener that itself writes to the
    // console must reach the real one, not loop back into the run.
    [ThreadStatic]
    private static bool _emitting;

    private static readonly Lock InstallGate = new();
    private static (TextWriter Out, TextWriter Error)? _real;

    public override Encoding Encoding => fallback.Encoding;

    public override IFormatProvider FormatProvider => fallback.FormatProvider;

    [System.Diagnostics.CodeAnalysis.AllowNull]
    public override string NewLine
    {
        get => fallback.NewLine;
        set => fallback.NewLine = value;
    }

    /// <summary>
    /// Replaces the process's <see cref="Console.Out"/> and <see cref="Console.Error"/> with capturing writers
    /// (once; later calls change nothing) and returns the real ones, for output that must never be captured.
    /// </summary>
    public static (TextWriter Out, TextWriter Error) Install()
    {
        lock (InstallGate)
        {
            if (_real is null)
            {
                var real = (Console.Out, Console.Error);
                Console.SetOut(new CapturedConsoleWriter(OutputScope.Stdout, real.Out));
                Console.SetError(new CapturedConsoleWriter(OutputScope.Stderr, real.Error));
                _real = real;
            }

            return _real.Value;
        }
    }

    public override void Write(char value) => Write([value]);

    public override void Write(string? value) => Write(value.AsSpan());

    public override void Write(char[] buffer, int index, int count) => Write(buffer.AsSpan(index, count));

    public override void Write(ReadOnlySpan<char> buffer)
    {
        if (!_emitting && OutputScope.Current is { } scope)
        {
            _emitting = true;
            try
            {
                if (scope.Write(stream, buffer))
                {
                    return;
                }
            }
            finally
            {
                _emitting = false;
            }
        }

        fallback.Write(buffer);
    }

    public override void WriteLine(string? value) => WriteLine(value.AsSpan());

    public override void WriteLine(ReadOnlySpan<char> buffer)
    {
        Write(buffer);
        Write(CoreNewLine);
    }

    public override void Flush() => fallback.Flush();
}
