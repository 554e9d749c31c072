using Skiff.Core;

namespace Skiff.Build.Sources;

/// <summary>The packed source blob, staged beside the store until the release is committed.</summary>
internal sealed record PreparedSource(Digest Digest, long Bytes, string StagedFile, string EntryAssembly, int FileCount);
