using Skiff.Sdk.Events;

namespace Skiff.Sdk.Tasks;

/// <summary>
/// Which task call an event of the calling run came from: stamped on the task's logs, output and progress, which
/// also carry the calling op (and its attempt), so they read as part of that op.
/// </summary>
/// <param name="Pool">The pool serving the task.</param>
/// <param name="Task">The task's name.</param>
/// <param name="TaskId">The call's id.</param>
/// <param name="Attempt">The task's attempt; null on events of the whole call (progress).</param>
internal sealed record TaskOrigin(string Pool, string Task, string TaskId, int? Attempt)
{
    public RunEvent Stamp(RunEvent e) => e with { Pool = Pool, Task = Task, TaskId = TaskId, TaskAttempt = Attempt };
}
