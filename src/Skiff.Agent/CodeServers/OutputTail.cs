namespace Skiff.Agent.CodeServers;

/// <summary>The last lines a process wrote to one of its streams: what to show when it dies.</summary>
internal sealed class OutputTail(int capacity)
{
    private readonly Queue<string> _lines = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Add(string? line)
    {
        if (line is null)
        {
            // The stream ended: the process closed it or exited.
            _closed.TrySetResult();
            return;
        }

        lock (_lines)
        {
            _lines.Enqueue(line);
            while (_lines.Count > capacity)
            {
                _lines.Dequeue();
            }
        }
    }

    public IReadOnlyList<string> Snapshot()
    {
        lock (_lines)
        {
            return [.. _lines];
        }
    }

    /// <summary>The tail once the stream has been read to its end, so a dying process's last words are in it.</summary>
    public async Task<IReadOnlyList<string>> SnapshotAfterExitAsync()
    {
        // A grandchild that inherited the stream can keep it open past the exit; do not wait on it for long.
        await Task.WhenAny(_closed.Task, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
        return Snapshot();
    }
}
