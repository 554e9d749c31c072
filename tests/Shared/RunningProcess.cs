using System.Diagnostics;

namespace Skiff.Testing;

/// <summary>
/// A long-running child process (a watch loop, a server) whose output a test reads as it comes: wait for a
/// line with a deadline, then signal it as a user at a terminal would (Ctrl-C is SIGINT).
/// </summary>
internal sealed class RunningProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private bool _disposed;
    private readonly string _description;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RunningProcess(Process process, string description)
    {
        _process = process;
        _description = description;
    }

    /// <summary>How many lines (stdout and stderr together) it has written so far.</summary>
    public int LineCount
    {
        get
        {
            lock (_lines)
            {
                return _lines.Count;
            }
        }
    }

    /// <summary>Everything it wrote so far, stdout and stderr interleaved as they arrived.</summary>
    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    public static RunningProcess Start(string fileName, IReadOnlyList<string> arguments, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var process = new Process { StartInfo = CliProcess.StartInfo(fileName, arguments, workingDirectory, environment) };
        var running = new RunningProcess(process, $"{fileName} {string.Join(' ', arguments)}");
        process.OutputDataReceived += (_, e) => running.Add(e.Data);
        process.ErrorDataReceived += (_, e) => running.Add(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return running;
    }

    /// <summary>Waits for a line, among those written after the first <paramref name="after"/>, that matches; returns it.</summary>
    /// <exception cref="TimeoutException">None came within <paramref name="timeout"/>, or the process exited first; the message holds its output.</exception>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, int after = 0)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var exited = false;
        while (true)
        {
            Task changed;
            lock (_lines)
            {
                if (_lines.Skip(after).FirstOrDefault(match) is { } line)
                {
                    return line;
                }

                changed = _changed.Task;
            }

            if (exited)
            {
                throw new TimeoutException($"{_description} exited ({_process.ExitCode}) before writing the line waited for:\n{Output}");
            }

            try
            {
                var exit = _process.WaitForExitAsync(deadline.Token);
                if (await Task.WhenAny(changed, exit).WaitAsync(deadline.Token) == exit)
                {
                    // WaitForExitAsync returns once the output has been read to its end: one last look, then give up.
                    await exit;
                    exited = true;
                }
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{_description} did not write the line waited for within {timeout}:\n{Output}");
            }
        }
    }

    /// <summary>Whether it has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Sends SIGINT (Ctrl-C) and waits for it to exit; returns its exit code.</summary>
    public async Task<int> InterruptAsync(TimeSpan timeout)
    {
        await SignalAsync("INT");
        return await ExitCodeAsync(timeout);
    }

    /// <summary>Sends a signal (<c>TERM</c>, <c>INT</c>, …) and returns without waiting for what it does.</summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
    }

    /// <summary>Waits for it to exit and returns its exit code.</summary>
    /// <exception cref="TimeoutException">It did not exit within <paramref name="timeout"/>; the message holds its output.</exception>
    public async Task<int> ExitCodeAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{_description} did not exit within {timeout}:\n{Output}");
        }

        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Add(string? line)
    {
        TaskCompletionSource changed;
        lock (_lines)
        {
            if (line is not null)
            {
                _lines.Add(line);
            }

            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }
}
