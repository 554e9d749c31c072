namespace Skiff.Client.Api;

/// <summary>Every error answer: what happened and what to do, with a status that fits (docs/api.md).</summary>
/// <param name="Error">One message for a person.</param>
internal sealed record ApiError(string Error);
