namespace Skiff.Core.Archives;

/// <summary>
/// An archive broke a rule of the skiff archive format: an unsafe path, a link, a bomb, a damaged or
/// truncated stream. Nothing from it may be used.
/// </summary>
internal sealed class UnsafeArchiveException(string archiveName, string? entryPath, string problem, Exception? innerException = null)
    : SkiffException(FormatMessage(archiveName, entryPath, problem), innerException)
{
    /// <summary>How the archive was named to the reader, e.g. <c>blob sha256:…</c>.</summary>
    public string ArchiveName { get; } = archiveName;

    /// <summary>The entry that broke the rule, or null when the stream itself is at fault.</summary>
    public string? EntryPath { get; } = entryPath;

    /// <summary>The rule it broke, phrased to follow "it" or "entry '…'".</summary>
    public string Problem { get; } = problem;

    private static string FormatMessage(string archiveName, string? entryPath, string problem)
    {
        var what = entryPath is null ? $"it {problem}" : $"entry '{entryPath}' {problem}";
        return $"{archiveName} was rejected: {what}. Nothing from it was put in place; rebuild it with `skiff build` and deploy again.";
    }
}
