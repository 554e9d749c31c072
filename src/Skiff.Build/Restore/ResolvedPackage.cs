using Skiff.Core.Archives;

namespace Skiff.Build.Restore;

/// <summary>
/// One package of the restored closure, with the runtime assets the restore chose for the target
/// framework and runtime identifier, as files in the NuGet packages folder.
/// </summary>
internal sealed record ResolvedPackage(string Id, string Version, string Sha512, IReadOnlyList<ArchiveFile> Assets);
