namespace Skiff.Sdk.Definitions;

/// <summary>One op of a job: what it depends on, how it retries, and its body (output boxed, null when none).</summary>
internal sealed record OpDefinition(string Name, IReadOnlyList<string> DependsOn, RetryPolicy Retry, Func<OpContext, Task<object?>> Body);
