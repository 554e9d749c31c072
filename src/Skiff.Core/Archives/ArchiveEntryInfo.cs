namespace Skiff.Core.Archives;

/// <summary>A file listed from an archive that passed every check.</summary>
/// <param name="Path">Its path inside the archive.</param>
/// <param name="Length">Its size in bytes.</param>
internal readonly record struct ArchiveEntryInfo(string Path, long Length);
