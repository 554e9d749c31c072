using System.Text.Json;
using Skiff.Sdk.Events;

namespace Skiff.Sdk.Tests.Execution;

/// <summary>A run's events as a listener receives them, with waits for the one a test is after.</summary>
internal sealed class EventLog
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly Lock _gate = new();
    private readonly List<RunEvent> _events = [];
    private readonly List<(Func<RunEvent, bool> Match, TaskCompletionSource<RunEvent> Found)> _waiters = [];

    public IReadOnlyList<RunEvent> All
    {
        get
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }
    }

    public IReadOnlyList<string> Types => [.. All.Select(e => e.Type)];

    public void Add(RunEvent e)
    {
        List<TaskCompletionSource<RunEvent>> found = [];
        lock (_gate)
        {
            _events.Add(e);
            foreach (var waiter in _waiters.Where(w => w.Match(e)).ToList())
            {
                _waiters.Remove(waiter);
                found.Add(waiter.Found);
            }
        }

        found.ForEach(f => f.SetResult(e));
    }

    public IReadOnlyList<RunEvent> OfType(string type, string? op = null) =>
        [.. All.Where(e => e.Type == type && (op is null || e.Op == op))];

    public RunEvent Single(string type, string? op = null)
    {
        var matching = OfType(type, op);
        return matching.Count == 1
            ? matching[0]
            : throw new ShouldAssertException($"expected one {type} event{(op is null ? "" : $" for op '{op}'")}, found {matching.Count}:\n{this}");
    }

    public Task<RunEvent> WaitForAsync(string type, string? op = null, int? attempt = null) =>
        WaitForAsync(e => e.Type == type && (op is null || e.Op == op) && (attempt is null || e.Attempt == attempt));

    public async Task<RunEvent> WaitForAsync(Func<RunEvent, bool> match)
    {
        var found = new TaskCompletionSource<RunEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_events.FirstOrDefault(match) is { } already)
            {
                return already;
            }

            _waiters.Add((match, found));
        }

        try
        {
            return await found.Task.WaitAsync(Deadline);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no matching event within {Deadline}; events so far:\n{this}");
        }
    }

    public override string ToString() => string.Join('\n', All.Select(e => JsonSerializer.Serialize(e, SdkJson.Options)));
}
