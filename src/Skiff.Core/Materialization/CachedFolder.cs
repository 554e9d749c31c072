namespace Skiff.Core.Materialization;

/// <summary>One unpacked blob in the cache.</summary>
internal sealed record CachedFolder(Digest Digest, bool IsPackage, long Bytes, DateTime LastUsedUtc);
