using System.Globalization;
using Skiff.Core;

namespace Skiff.Cli.Export;

/// <summary>
/// The private folder an export builds its image in (<c>$TMPDIR/skiff-export-*</c>): the base unpacked from its archive,
/// the release, the layers; as big as the base and the release together. It holds a lock file for as long as its export
/// runs, so an export that was killed (SIGKILL, an out-of-memory kill) leaves a folder nobody holds, and the next export
/// deletes it: a few killed pushes of a multi-GB base would otherwise fill the disk.
/// </summary>
internal sealed class ExportScratch : IDisposable
{
    private const string Prefix = "skiff-export-";
    private const string LockName = ".skiff-export.lock";
    private readonly FileStream _lock;

    private ExportScratch(string path, FileStream held)
    {
        Path = path;
        _lock = held;
    }

    public string Path { get; }

    /// <summary>Deletes the folders of exports that died, then makes this export's own.</summary>
    /// <exception cref="ExportException">The temporary folder cannot be written to.</exception>
    public static ExportScratch Create()
    {
        RemoveAbandoned();
        string path;
        FileStream held;
        try
        {
            path = Directory.CreateTempSubdirectory(Prefix).FullName;
            // FileShare.None takes an exclusive flock (.NET on Unix), which the kernel drops when the process dies.
            held = new FileStream(System.IO.Path.Combine(path, LockName), FileMode.CreateNew, FileAccess.Write, FileShare.None);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new ExportException($"could not make a folder to build the image in under {System.IO.Path.GetTempPath()} ({exception.Message}); point TMPDIR at a folder you may write to, with room for the base image and the release.", exception);
        }

        // Written only once the lock is held: a lock file without content belongs to an export that is just starting.
        held.Write(System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture)));
        held.Flush();
        return new ExportScratch(path, held);
    }

    private static void RemoveAbandoned()
    {
        IEnumerable<string> folders;
        try
        {
            folders = Directory.EnumerateDirectories(System.IO.Path.GetTempPath(), Prefix + "*").ToList();
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return;
        }

        foreach (var folder in folders)
        {
            try
            {
                using var abandoned = new FileStream(System.IO.Path.Combine(folder, LockName), FileMode.Open, FileAccess.ReadWrite, FileShare.None);
                if (abandoned.Length > 0)
                {
                    Directory.Delete(folder, recursive: true);
                }
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                // Held by a running export (or not an export's folder at all): left alone.
            }
        }
    }

    public void Dispose()
    {
        _lock.Dispose();
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}

/// <summary>An export could not write its image: the disk is full, or a folder cannot be written to.</summary>
internal sealed class ExportException(string message, Exception? innerException = null) : SkiffException(message, innerException);
