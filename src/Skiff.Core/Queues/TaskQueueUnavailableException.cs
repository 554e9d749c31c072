namespace Skiff.Core.Queues;

/// <summary>The queue's store or broker could not be reached, or refused the operation.</summary>
internal sealed class TaskQueueUnavailableException(string message, Exception? innerException = null)
    : SkiffException(message, innerException);
