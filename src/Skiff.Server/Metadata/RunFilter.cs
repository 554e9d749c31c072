namespace Skiff.Server.Metadata;

/// <summary>Which runs a search returns; a null part matches every run.</summary>
internal sealed record RunFilter(string? Location = null, string? Job = null, string? Status = null);

/// <summary>How many runs of one location ended (or are) in one status.</summary>
internal sealed record RunCount(string Location, string Status, int Count);
