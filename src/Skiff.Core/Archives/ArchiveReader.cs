using System.Formats.Tar;
using System.IO.Compression;

namespace Skiff.Core.Archives;

/// <summary>
/// Reads "skiff archive v1" (see <see cref="ArchiveWriter"/>) and nothing looser: every entry must be
/// a plain ustar regular file with a safe path, in strictly ascending ordinal order, within
/// <see cref="ArchiveLimits"/>, and the gzip stream must be complete and undamaged. Anything else
/// throws <see cref="UnsafeArchiveException"/>.
/// </summary>
internal static partial class ArchiveReader
{
    private const int CopyBufferBytes = 81920;

    private const UnixFileMode FolderMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
        UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>
    /// Extracts <paramref name="source"/> into <paramref name="destinationDirectory"/>, which must exist
    /// and be empty: files get mode 0644, folders 0755. Damage can only show once the data has been
    /// read (the gzip CRC covers the whole stream), so on any exception some files may already be
    /// written: the caller deletes the directory. Callers extract into a temporary directory and
    /// rename it into place only once this returns. <paramref name="archiveName"/> is how errors name
    /// the archive, e.g. <c>blob sha256:…</c>.
    /// </summary>
    /// <exception cref="UnsafeArchiveException">The archive broke a rule of the format.</exception>
    /// <exception cref="ArgumentException">The destination is missing or not empty.</exception>
    public static async Task ExtractAsync(Stream source, string destinationDirectory, string archiveName, ArchiveLimits limits, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(destinationDirectory);
        ArgumentException.ThrowIfNullOrEmpty(archiveName);
        ArgumentNullException.ThrowIfNull(limits);

        var root = Path.GetFullPath(destinationDirectory);
        if (!Directory.Exists(root))
        {
            throw new ArgumentException($"Cannot extract {archiveName} into '{root}': the folder does not exist. Create an empty folder first.", nameof(destinationDirectory));
        }

        if (Directory.EnumerateFileSystemEntries(root).Any())
        {
            throw new ArgumentException($"Cannot extract {archiveName} into '{root}': the folder is not empty. Archives are extracted only into a new, empty folder.", nameof(destinationDirectory));
        }

        var createdFolders = new HashSet<string>(StringComparer.Ordinal);
        await ReadAsync(source, archiveName, limits, entry => CreateFile(root, createdFolders, archiveName, entry), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Lists the files in <paramref name="source"/>, in archive order, after checking the whole archive
    /// exactly as <see cref="ExtractAsync"/> does (so it reads all of it). <paramref name="archiveName"/>
    /// is how errors name the archive.
    /// </summary>
    /// <exception cref="UnsafeArchiveException">The archive broke a rule of the format.</exception>
    public static async Task<IReadOnlyList<ArchiveEntryInfo>> ListAsync(Stream source, string archiveName, ArchiveLimits limits, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(archiveName);
        ArgumentNullException.ThrowIfNull(limits);

        var entries = new List<ArchiveEntryInfo>();
        await ReadAsync(
            source,
            archiveName,
            limits,
            entry =>
            {
                entries.Add(entry);
                return null;
            },
            cancellationToken).ConfigureAwait(false);
        return entries;
    }

    /// <summary>
    /// Walks and checks the whole archive. <paramref name="openEntry"/> is called for each file once its
    /// header passed every check and returns where its data goes (null to discard it).
    /// </summary>
    private static async Task ReadAsync(Stream source, string archiveName, ArchiveLimits limits, Func<ArchiveEntryInfo, Stream?> openEntry, CancellationToken cancellationToken)
    {
        string? current = null;
        var buffer = new byte[CopyBufferBytes];
        var tail = new TailStream(source);
        var gzip = new GZipStream(tail, CompressionMode.Decompress, leaveOpen: true);
        await using (gzip.ConfigureAwait(false))
        {
            var expanded = new ExpandedStream(
                gzip,
                limits.MaxTotalBytes,
                () => Reject(current, current is null
                    ? $"expands past the limit of {limits.MaxTotalBytes} bytes"
                    : $"takes the archive past the limit of {limits.MaxTotalBytes} bytes expanded"));

            var tar = new TarReader(expanded, leaveOpen: true);
            await using (tar.ConfigureAwait(false))
            {
                var files = new HashSet<string>(StringComparer.Ordinal);
                var folders = new HashSet<string>(StringComparer.Ordinal);
                long declaredTotal = 0;

                while (true)
                {
                    TarEntry? entry;
                    try
                    {
                        entry = await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception e) when (IsDamage(e))
                    {
                        throw Damaged(current, e);
                    }

                    if (entry is null)
                    {
                        break;
                    }

                    var previous = current;
                    current = entry.Name;
                    CheckEntry(entry, previous, files, folders);

                    if (files.Count > limits.MaxEntries)
                    {
                        throw Reject(current, $"is past the limit of {limits.MaxEntries} entries");
                    }

                    // Checked against the header, before any data is read; the bytes actually
                    // expanded are counted separately by ExpandedStream.
                    if (entry.Length > limits.MaxEntryBytes)
                    {
                        throw Reject(current, $"is {entry.Length} bytes, over the limit of {limits.MaxEntryBytes} per entry");
                    }

                    declaredTotal += entry.Length;
                    if (declaredTotal > limits.MaxTotalBytes)
                    {
                        throw Reject(current, $"takes the archive past the limit of {limits.MaxTotalBytes} bytes expanded");
                    }

                    var sink = openEntry(new ArchiveEntryInfo(current, entry.Length));
                    if (sink is null)
                    {
                        await CopyDataAsync(entry, Stream.Null, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await using (sink.ConfigureAwait(false))
                        {
                            await CopyDataAsync(entry, sink, cancellationToken).ConfigureAwait(false);
                        }
                    }
                }
            }

            current = null;
            await CheckEndAsync(expanded, tail, cancellationToken).ConfigureAwait(false);
        }

        async Task CopyDataAsync(TarEntry entry, Stream sink, CancellationToken cancellationToken)
        {
            if (entry.DataStream is not { } data)
            {
                return;
            }

            long copied = 0;
            while (true)
            {
                int read;
                try
                {
                    read = await data.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (IsDamage(e))
                {
                    throw Damaged(current, e);
                }

                if (read == 0)
                {
                    break;
                }

                copied += read;
                await sink.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }

            if (copied != entry.Length)
            {
                throw Reject(current, $"could not be read: the archive ends after {copied} of its {entry.Length} bytes");
            }
        }

        // After the end-of-archive marker only zero padding may follow, and then the gzip trailer must
        // match what was expanded. GZipStream alone does not catch truncation: when its input runs out
        // early it reports a normal end of stream, and it silently skips bytes after the trailer.
        async Task CheckEndAsync(ExpandedStream expanded, TailStream tail, CancellationToken cancellationToken)
        {
            while (true)
            {
                int read;
                try
                {
                    read = await expanded.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (IsDamage(e))
                {
                    throw Damaged(null, e);
                }

                if (read == 0)
                {
                    break;
                }

                if (buffer.AsSpan(0, read).ContainsAnyExcept((byte)0))
                {
                    throw Reject(null, "has data after its end-of-archive marker");
                }
            }

            // GZipStream reads ahead, so what is left is usually already consumed; the cap keeps a
            // stream with gigabytes appended from being read to its end just to be refused.
            var remaining = await tail.SkipToEndAsync(maxBytes: CopyBufferBytes, cancellationToken).ConfigureAwait(false);
            if (remaining > CopyBufferBytes)
            {
                throw Reject(null, "has data after the end of its compressed stream");
            }

            if (!tail.EndsWithGzipTrailer(expanded.Crc, expanded.Length))
            {
                throw Reject(null, "is truncated or has data after its end (its gzip trailer does not match its content)");
            }
        }

        void CheckEntry(TarEntry entry, string? previous, HashSet<string> files, HashSet<string> folders)
        {
            var path = entry.Name;
            switch (entry.EntryType)
            {
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                    break;
                case TarEntryType.SymbolicLink:
                    throw Reject(path, $"is a symbolic link (to '{entry.LinkName}'); archives hold only regular files");
                case TarEntryType.HardLink:
                    throw Reject(path, $"is a hard link (to '{entry.LinkName}'); archives hold only regular files");
                case TarEntryType.Directory:
                    throw Reject(path, "is a directory entry; archives hold only regular files and folders are implied by their paths");
                default:
                    throw Reject(path, $"is a {entry.EntryType} entry; archives hold only regular files");
            }

            // pax and GNU headers can rename an entry, resize it or make it sparse after the fact;
            // the writer never emits them.
            if (entry.Format != TarEntryFormat.Ustar)
            {
                throw Reject(path, $"is a {entry.Format} tar entry; archives hold only plain ustar entries");
            }

            if (ArchivePath.FindProblem(path) is { } problem)
            {
                throw Reject(path, problem);
            }

            if (previous is not null)
            {
                var order = string.CompareOrdinal(previous, path);
                if (order == 0)
                {
                    throw Reject(path, "appears twice");
                }

                if (order > 0)
                {
                    throw Reject(path, $"is out of order: it comes after '{previous}', and entries must be sorted by ordinal path");
                }
            }

            if (folders.Contains(path))
            {
                throw Reject(path, "is both a file and a folder");
            }

            for (var slash = path.IndexOf('/', StringComparison.Ordinal); slash >= 0; slash = path.IndexOf('/', slash + 1))
            {
                var folder = path[..slash];
                if (files.Contains(folder))
                {
                    throw Reject(path, $"is inside '{folder}', which is a file");
                }

                folders.Add(folder);
            }

            files.Add(path);
        }

        UnsafeArchiveException Reject(string? entryPath, string problem) => new(archiveName, entryPath, problem);

        UnsafeArchiveException Damaged(string? entryPath, Exception e) =>
            new(archiveName, entryPath, entryPath is null
                ? "is damaged (its compressed stream or tar structure is corrupt)"
                : "could not be read: the compressed stream or tar structure around it is corrupt", e);
    }

    // What System.IO.Compression and System.Formats.Tar throw for malformed input. Failures of the
    // destination (a full disk) are not in this list and pass through as they are.
    private static bool IsDamage(Exception e) =>
        e is InvalidDataException or EndOfStreamException or FormatException or OverflowException
            or NotSupportedException or ArgumentException or InvalidOperationException;

    private static FileStream CreateFile(string root, HashSet<string> createdFolders, string archiveName, ArchiveEntryInfo entry)
    {
        var target = Path.GetFullPath(Path.Join(root, entry.Path));

        // ArchivePath already refuses anything that climbs out; this also covers what only Windows
        // reads as rooted ("C:x").
        if (!target.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new UnsafeArchiveException(archiveName, entry.Path, $"would be written outside '{root}'");
        }

        for (var slash = entry.Path.IndexOf('/', StringComparison.Ordinal); slash >= 0; slash = entry.Path.IndexOf('/', slash + 1))
        {
            var folder = entry.Path[..slash];
            if (createdFolders.Add(folder))
            {
                var folderPath = Path.Join(root, folder);
                Directory.CreateDirectory(folderPath);
                if (!OperatingSystem.IsWindows())
                {
                    // Set after creation: a mode given at creation is reduced by the umask.
                    File.SetUnixFileMode(folderPath, FolderMode);
                }
            }
        }

        // CreateNew: on a case-insensitive file system "A" and "a" collide instead of overwriting.
        var file = new FileStream(target, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            Options = FileOptions.Asynchronous,
        });
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(file.SafeFileHandle, ArchiveWriter.EntryMode);
        }

        return file;
    }
}
