using System.Globalization;

namespace Skiff.Core.Locking;

/// <summary>
/// An exclusive lock on a file, held by this process until disposed. It is an OS file lock (<c>flock</c>, which
/// .NET takes for <see cref="FileShare.None"/> on Unix), so a process that was killed holds nothing and there is no
/// stale lock to clean up. Beside the lock file, <c>.holder</c> says who holds it, for the message of whoever waits.
/// </summary>
internal sealed class ProcessLock : IDisposable
{
    private readonly FileStream _lock;

    private ProcessLock(FileStream @lock) => _lock = @lock;

    /// <summary>Takes the lock, or returns null at once when another process (or another holder here) has it.</summary>
    /// <param name="path">The lock file; its folder must exist.</param>
    /// <param name="holder">What this process is doing with it, for others' messages (for example "skiff up").</param>
    public static ProcessLock? TryAcquire(string path, string holder)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException) when (File.Exists(path))
        {
            return null;
        }

        File.WriteAllText(path + ".holder", string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId} {holder}"));
        return new ProcessLock(stream);
    }

    /// <summary>Who holds the lock at <paramref name="path"/>, as "pid N, what": null when it cannot be told.</summary>
    public static string? DescribeHolder(string path)
    {
        try
        {
            var text = File.ReadAllText(path + ".holder").Trim();
            var space = text.IndexOf(' ', StringComparison.Ordinal);
            return space > 0 ? $"pid {text[..space]}, {text[(space + 1)..]}" : $"pid {text}";
        }
        catch (IOException)
        {
            return null;
        }
    }

    public void Dispose() => _lock.Dispose();
}

/// <summary>A data or cache folder that another Skiff process is using.</summary>
internal sealed class FolderInUseException(string message) : SkiffException(message);

/// <summary>One process per data folder: a server, an agent, or <c>skiff up</c> holds its folder while it runs.</summary>
internal static class DataFolder
{
    /// <summary>
    /// Creates <paramref name="folder"/> (owner-only when new) and locks it for this process: two processes on one
    /// folder would each believe they own what is in it (a second <c>skiff up</c> once failed the first one's runs).
    /// </summary>
    /// <exception cref="FolderInUseException">Another process holds it; nothing in it was touched.</exception>
    public static ProcessLock Lock(string folder, string holder)
    {
        if (!Directory.Exists(folder) && !OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        Directory.CreateDirectory(folder);

        var path = Path.Combine(folder, "lock");
        return ProcessLock.TryAcquire(path, holder) ?? throw new FolderInUseException(
            $"{folder} is in use by another Skiff process ({ProcessLock.DescribeHolder(path) ?? "its pid is not known"}); stop that one, or give this one a folder of its own.");
    }
}
