namespace Skiff.Core.Archives;

/// <summary>A file handed to <see cref="ArchiveWriter"/> cannot go into a skiff archive.</summary>
internal sealed class ArchiveInputException(string path, string problem, Exception? innerException = null)
    : SkiffException($"'{path}' cannot go into an archive: it {problem}. Rename, move or exclude the file and build again.", innerException)
{
    /// <summary>The path inside the archive that was refused.</summary>
    public string Path { get; } = path;

    /// <summary>The rule it broke, phrased to follow "it".</summary>
    public string Problem { get; } = problem;
}
