namespace Skiff.Sdk.Definitions;

/// <summary>
/// A task a job project declares: what a location serving this release does for ops of other runs. Its body takes and
/// returns JSON (the input and output as <c>SdkJson</c> writes them), exactly as it will when the task travels on a queue.
/// </summary>
internal sealed record TaskDefinition(
    string Name,
    string? Description,
    Type InputType,
    Type OutputType,
    RetryPolicy Retry,
    Func<TaskContext, byte[], Task<byte[]>> Body);
