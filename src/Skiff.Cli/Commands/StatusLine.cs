using System.Diagnostics;
using System.Globalization;
using Skiff.Build.Releases;

namespace Skiff.Cli.Commands;

/// <summary>
/// On a terminal, a line at the bottom that says what is going on now and keeps moving while it runs
/// ("uploading 3 of 12 blobs: 4.1 of 38.0 MiB… 2.3 s"), replaced by each finished step's line. In plain mode
/// (output redirected, or <c>CI</c> set, as every CI service does) only the finished steps' lines, nothing
/// animated, so a CI log holds no carriage returns or escape codes.
/// </summary>
internal sealed class StatusLine : IDisposable
{
    /// <summary>How often the moving line is redrawn: often enough to look alive, rarely enough to cost nothing.</summary>
    private static readonly TimeSpan Refresh = TimeSpan.FromMilliseconds(200);

    private readonly Lock _lock = new();
    private readonly Timer? _timer;
    private Func<string>? _current;
    private long _since;
    private bool _showing;

    public StatusLine()
    {
        if (!Plain)
        {
            _timer = new Timer(_ => Draw(), null, Refresh, Refresh);
        }
    }

    /// <summary>True when nothing may move: output is not a terminal, <c>CI</c> is set, or <c>TERM=dumb</c>.</summary>
    public static bool Plain =>
        Console.IsOutputRedirected
        || Environment.GetEnvironmentVariable("CI") is { Length: > 0 } ci && !ci.Equals("false", StringComparison.OrdinalIgnoreCase) && ci != "0"
        || Environment.GetEnvironmentVariable("TERM") == "dumb";

    /// <summary>Shows what is going on now, with the time it has taken so far.</summary>
    public void Show(string text) => Show(() => text);

    /// <summary>Shows what is going on now, asking <paramref name="text"/> again at every redraw (for counters).</summary>
    public void Show(Func<string> text)
    {
        lock (_lock)
        {
            _current = text;
            _since = Stopwatch.GetTimestamp();
        }

        Draw();
    }

    /// <summary>Prints a finished step's line (in plain mode too), clearing the moving line first.</summary>
    public void Line(string text)
    {
        lock (_lock)
        {
            _current = null;
            if (_showing)
            {
                Console.Write("\r\u001b[K");
                _showing = false;
            }

            Console.WriteLine(text);
        }
    }

    /// <summary>A finished stage's line ("build        294 ms  compiled …"), in the one format every command uses.</summary>
    public void Stage(string stage, string summary, TimeSpan elapsed) =>
        Line($"{stage,-12} {Format.Milliseconds(elapsed),8}  {summary}");

    /// <summary>
    /// A build stage's line, then what the build does next, so the bottom line never says a finished stage is
    /// still running (a restore that downloads packages can take a minute).
    /// </summary>
    /// <summary>
    /// What a command that prints JSON on stdout still says on stderr while building: only that it is waiting for
    /// another build of the project, so a script's deploy that seems stuck says why.
    /// </summary>
    public static void WaitsOnly(StageReport report)
    {
        if (report.Stage == "wait")
        {
            Console.Error.WriteLine(report.Summary);
        }
    }

    public void BuildStage(StageReport report)
    {
        Stage(report.Stage, report.Summary, report.Elapsed);
        if (report.Stage is "restore" or "build" or "environment")
        {
            Show(report.Stage == "restore" ? "building" : "packing");
        }
    }

    /// <summary>Takes the moving line away, so what comes next (on stderr, say) starts on a clean line.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _current = null;
            if (_showing)
            {
                Console.Write("\r\u001b[K");
                _showing = false;
            }
        }
    }

    public void Dispose()
    {
        _timer?.Dispose();
        Clear();
    }

    private void Draw()
    {
        if (_timer is null)
        {
            return;
        }

        lock (_lock)
        {
            if (_current is null)
            {
                return;
            }

            var elapsed = Stopwatch.GetElapsedTime(_since);
            // The seconds appear only once a step takes long enough for someone to wonder.
            var clock = elapsed >= TimeSpan.FromSeconds(1) ? string.Create(CultureInfo.InvariantCulture, $" {elapsed.TotalSeconds:0.0} s") : "";
            Console.Write($"\r\u001b[K{_current()}…{clock}");
            _showing = true;
        }
    }
}
