using Skiff.Sdk.Events;

namespace Skiff.Sdk.Tasks;

/// <summary>One call of a task by an op: what to run, where, with what, and where its events go.</summary>
/// <param name="Pool">The pool, as parsed from what the op wrote.</param>
/// <param name="Task">The task's name.</param>
/// <param name="TaskId">The call's side-effect key (<see cref="TaskContext.TaskId"/>).</param>
/// <param name="Input">The input as JSON.</param>
/// <param name="Events">The calling run's events.</param>
/// <param name="Op">The calling op.</param>
/// <param name="OpAttempt">The calling op's attempt.</param>
/// <param name="TraceParent">The calling attempt's span (W3C), which the task's spans continue; null when nothing traces.</param>
/// <param name="RedeliveryReason">For a deployed call delivered again by its queue: why the previous delivery ended.</param>
internal sealed record TaskCall(
    PoolReference Pool,
    string Task,
    string TaskId,
    byte[] Input,
    RunEventStream Events,
    string Op,
    int OpAttempt,
    string? TraceParent,
    string? RedeliveryReason = null);
