namespace Skiff.Sdk;

/// <summary>
/// A task an op called did not give a result: it failed on its last attempt, no pool serves it, or task calls are
/// not available where the run is running. Thrown by <see cref="OpContext.CallAsync{TInput, TOutput}"/>; an op that
/// does not catch it fails with it (and is retried by its own policy, which calls the task again).
/// </summary>
public sealed class TaskCallException : Exception
{
    internal TaskCallException(string pool, string task, string? taskId, string message, string? errorType = null)
        : base(message)
    {
        Pool = pool;
        Task = task;
        TaskId = taskId;
        ErrorType = errorType;
    }

    /// <summary>The pool as the op named it (with its pin, if any).</summary>
    public string Pool { get; }

    /// <summary>The task's name.</summary>
    public string Task { get; }

    /// <summary>The call's task id; null when the call never became a task.</summary>
    public string? TaskId { get; }

    /// <summary>The full type name of the exception the task's last attempt failed with; null when the task never ran.</summary>
    public string? ErrorType { get; }
}
