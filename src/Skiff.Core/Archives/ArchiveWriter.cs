using System.Formats.Tar;

namespace Skiff.Core.Archives;

/// <summary>
/// Writes "skiff archive v1": a gzipped ustar stream of regular files, sorted by ordinal path, with
/// fixed metadata, so that the same files give the same bytes (and so the same digest) on every
/// machine, from any folder, whatever their timestamps, permissions and owners on disk.
/// </summary>
internal static class ArchiveWriter
{
    /// <summary>
    /// The mtime of every entry. Not the Unix epoch: tools treat 0 as "no time", zip-based tools cannot
    /// represent anything before 1980, and `tar -tv` west of UTC would show 1969.
    /// </summary>
    public static readonly DateTimeOffset EntryTime = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>The mode of every entry: 0644.</summary>
    public const UnixFileMode EntryMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    // The ustar size field holds 11 octal digits.
    private const long MaxUstarEntryBytes = (1L << 33) - 1;

    /// <summary>
    /// Writes <paramref name="files"/> to <paramref name="destination"/>, which is left open. Every path
    /// is checked before anything is written; a source file that cannot be read shows only while
    /// writing, and then what reached <paramref name="destination"/> must be discarded.
    /// </summary>
    /// <exception cref="ArchiveInputException">A path breaks a rule of <see cref="ArchivePath"/>, does
    /// not fit a ustar header, is listed twice, is both a file and a folder, or its file is over 8 GiB.</exception>
    /// <exception cref="IOException">A source file could not be read or changed while it was read.</exception>
    public static async Task WriteAsync(Stream destination, IEnumerable<ArchiveFile> files, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(files);

        var sorted = Validate(files);

        var gzip = new DeterministicGzipStream(destination);
        await using (gzip.ConfigureAwait(false))
        {
            if (sorted.Count == 0)
            {
                // TarWriter writes nothing for no entries; a tar archive still ends with two zero blocks.
                await gzip.WriteAsync(new byte[2 * 512], cancellationToken).ConfigureAwait(false);
                return;
            }

            var tar = new TarWriter(gzip, TarEntryFormat.Ustar, leaveOpen: true);
            await using (tar.ConfigureAwait(false))
            {
                foreach (var file in sorted)
                {
                    await WriteEntryAsync(tar, file, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    private static List<ArchiveFile> Validate(IEnumerable<ArchiveFile> files)
    {
        var sorted = files.ToList();
        sorted.Sort((x, y) => string.CompareOrdinal(x.Path, y.Path));

        var folders = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < sorted.Count; i++)
        {
            var path = sorted[i].Path;
            if (ArchivePath.FindProblem(path) is { } problem)
            {
                throw new ArchiveInputException(path, problem);
            }

            if (!ArchivePath.FitsUstarHeader(path))
            {
                throw new ArchiveInputException(path, $"does not fit a ustar header (at most {ArchivePath.UstarNameBytes} UTF-8 bytes, or split at a '/' into {ArchivePath.UstarPrefixBytes} + {ArchivePath.UstarNameBytes}; a shorter last folder or file name helps)");
            }

            if (i > 0 && string.Equals(sorted[i - 1].Path, path, StringComparison.Ordinal))
            {
                throw new ArchiveInputException(path, "is listed twice");
            }

            for (var slash = path.IndexOf('/', StringComparison.Ordinal); slash >= 0; slash = path.IndexOf('/', slash + 1))
            {
                folders.Add(path[..slash]);
            }
        }

        // Checked once every folder is known: "a" sorts before "a.txt", which sorts before "a/b".
        foreach (var file in sorted)
        {
            if (folders.Contains(file.Path))
            {
                throw new ArchiveInputException(file.Path, $"is both a file and a folder (other files are under '{file.Path}/')");
            }
        }

        return sorted;
    }

    private static async Task WriteEntryAsync(TarWriter tar, ArchiveFile file, CancellationToken cancellationToken)
    {
        var source = new FileStream(file.SourcePath, new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.Read,
            Share = FileShare.Read,
            Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
        });
        await using (source.ConfigureAwait(false))
        {
            var length = source.Length;
            if (length > MaxUstarEntryBytes)
            {
                throw new ArchiveInputException(file.Path, $"is {length} bytes; a ustar entry holds at most {MaxUstarEntryBytes}");
            }

            var entry = new UstarTarEntry(TarEntryType.RegularFile, file.Path)
            {
                Mode = EntryMode,
                Uid = 0,
                Gid = 0,
                UserName = string.Empty,
                GroupName = string.Empty,
                ModificationTime = EntryTime,
                DataStream = source,
            };

            try
            {
                await tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
            }
            catch (ArgumentException e)
            {
                // FitsUstarHeader checks the name as TarWriter does; this is for whatever else it refuses.
                throw new ArchiveInputException(file.Path, $"could not be written as a ustar entry ({e.Message})", e);
            }

            // TarWriter wrote the length it saw first into the header, then copied to the end of the
            // file: a file that grew or shrank meanwhile leaves a header that lies about its data.
            if (source.Position != length)
            {
                throw new IOException($"'{file.SourcePath}' changed size while it was being archived as '{file.Path}' ({length} bytes, then {source.Position}); the archive is unusable. Build again once nothing else writes to it.");
            }
        }
    }
}
