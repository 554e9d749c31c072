using System.Text;

namespace Skiff.Core.Archives;

/// <summary>
/// The rules for paths inside a skiff archive. The writer and the reader share them, so whatever one
/// writes the other accepts, and nothing the reader accepts can name a file outside the folder it
/// extracts into.
/// </summary>
internal static class ArchivePath
{
    /// <summary>Bytes in the ustar <c>name</c> field.</summary>
    public const int UstarNameBytes = 100;

    /// <summary>Bytes in the ustar <c>prefix</c> field.</summary>
    public const int UstarPrefixBytes = 155;

    /// <summary>
    /// Why <paramref name="path"/> may not be in an archive, phrased to follow "it", or null when it
    /// may. Allowed: relative, '/'-separated, no empty, '.' or '..' segments, no backslash, no NUL.
    /// </summary>
    public static string? FindProblem(string path)
    {
        if (path.Length == 0)
        {
            return "is empty";
        }

        if (path.Contains('\0', StringComparison.Ordinal))
        {
            return "contains a NUL character";
        }

        // A backslash is a separator on Windows: "a\..\..\x" would climb out there.
        if (path.Contains('\\', StringComparison.Ordinal))
        {
            return "contains a backslash (archive paths separate folders with '/')";
        }

        if (path[0] == '/')
        {
            return "is an absolute path";
        }

        foreach (var segment in path.Split('/'))
        {
            if (segment.Length == 0)
            {
                return "has an empty segment ('//' or a trailing '/')";
            }

            if (segment is "." or "..")
            {
                return $"has a '{segment}' segment";
            }
        }

        return null;
    }

    /// <summary>
    /// Whether System.Formats.Tar can write <paramref name="path"/> as a ustar name: at most 100 UTF-8
    /// bytes, or split at a '/' into a prefix of at most 155 bytes and a name of at most 100.
    /// </summary>
    /// <remarks>
    /// This mirrors the split TarWriter makes rather than trying every '/': it starts at the last '/'
    /// and moves left only while the prefix is more than 155 bytes longer than the name, so it refuses
    /// some paths that could be split (a 100-byte folder, a 60-byte folder, a 10-byte file). Checking
    /// the same way finds every refusal before anything is written.
    /// </remarks>
    public static bool FitsUstarHeader(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length <= UstarNameBytes)
        {
            return true;
        }

        var slash = bytes.AsSpan().LastIndexOf((byte)'/');
        if (slash < 1)
        {
            return false;
        }

        while (slash - (bytes.Length - slash - 1) > UstarPrefixBytes)
        {
            var next = bytes.AsSpan(0, slash).LastIndexOf((byte)'/');
            if (next < 1)
            {
                break;
            }

            slash = next;
        }

        return slash <= UstarPrefixBytes && bytes.Length - slash - 1 <= UstarNameBytes;
    }
}
