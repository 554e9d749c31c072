namespace Skiff.Sdk.Execution;

/// <summary>How a run ended.</summary>
internal enum RunOutcome
{
    Succeeded,
    Failed,
    Canceled,
}
