namespace Skiff.Core.Archives;

/// <summary>A file to put in an archive.</summary>
/// <param name="Path">Its path inside the archive: relative, '/'-separated, see <see cref="ArchivePath"/>.</param>
/// <param name="SourcePath">The file on disk whose bytes go in. Only its content is used: never its
/// name, timestamps, permissions or owner.</param>
internal readonly record struct ArchiveFile(string Path, string SourcePath);
