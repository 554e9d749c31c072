using Skiff.Core;

namespace Skiff.Build.Sources;

/// <summary>
/// The packed source blob, staged beside the store until the release is committed. <c>SdkVersion</c> is
/// the version of Skiff.Sdk.dll when the project references the SDK as a project.
/// </summary>
internal sealed record PreparedSource(Digest Digest, long Bytes, string StagedFile, string EntryAssembly, int FileCount, string? SdkVersion);
