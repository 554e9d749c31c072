using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Skiff.Core.Materialization;

/// <summary>
/// What the file system says about every entry of a folder, without reading a byte of content: path, inode, size,
/// mode, and modification and change times, hashed into one value. Any write, truncation, chmod, rename, added or
/// removed file changes it, because each sets the change time (ctime) of what it touched, and only root can set a
/// ctime back (by moving the system clock). So taking a stamp costs a stat per file, not a hash of every byte:
/// about 12 ms for the heavy sample's 77 folders where hashing their files takes about 370 ms (docs/integrity.md).
/// </summary>
internal static class FolderStamp
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    private const int StatxSize = 256;

    /// <summary>The stamp of <paramref name="folder"/> and everything under it; null when it is gone.</summary>
    public static byte[]? Take(string folder)
    {
        using var stamp = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[StatxSize];
        List<string> entries;
        try
        {
            entries = [.. Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories)];
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }

        entries.Sort(StringComparer.Ordinal);
        entries.Insert(0, folder);
        foreach (var entry in entries)
        {
            if (!Append(stamp, entry, buffer))
            {
                return null;
            }
        }

        return stamp.GetHashAndReset();
    }

    private static bool Append(IncrementalHash stamp, string path, byte[] buffer)
    {
        stamp.AppendData(Encoding.UTF8.GetBytes(path));
        if (!OperatingSystem.IsLinux())
        {
            // Elsewhere only what .NET shows: size and write time (the agent runs on Linux; this keeps `skiff exec` working).
            var info = new FileInfo(path);
            var described = $"\0{(info.Exists ? info.Length : -1)}\0{info.LastWriteTimeUtc.Ticks}\0{info.Attributes}\n";
            stamp.AppendData(Encoding.UTF8.GetBytes(described));
            return info.Exists || Directory.Exists(path);
        }

        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            return false;
        }

        // struct statx (linux/stat.h), the same layout on every architecture: stx_mode at 28, stx_ino at 32, stx_size
        // at 40, stx_ctime at 96 and stx_mtime at 112 (each 8 bytes of seconds, 4 of nanoseconds).
        Span<byte> fields = stackalloc byte[2 + 8 + 8 + 12 + 12];
        buffer.AsSpan(28, 2).CopyTo(fields);
        buffer.AsSpan(32, 16).CopyTo(fields[2..]);
        buffer.AsSpan(96, 12).CopyTo(fields[18..]);
        buffer.AsSpan(112, 12).CopyTo(fields[30..]);
        stamp.AppendData(fields);
        return true;
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int directory, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);
}
