using System.Buffers;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Skiff.Core.Blobs;

/// <summary>
/// A blob store in a local folder: <c>&lt;root&gt;/blobs/sha256/&lt;hex&gt;</c>, read-only files, and
/// <c>&lt;root&gt;/tmp/</c> for blobs being written. Every write goes to a new temporary file, is hashed
/// as it is written, flushed to disk, and only then renamed to its digest, so a crash or a failed
/// check never leaves a partial or wrong blob under a real name. Several processes may share a root:
/// two puts of one digest both rename identical bytes onto the same name. A blob found damaged is moved to
/// <c>&lt;root&gt;/quarantine/sha256/&lt;hex&gt;</c>, where it is missing to the store but kept for a person to look at.
/// </summary>
internal sealed class FileBlobStore : IBlobStore
{
    private const int CopyBufferBytes = 81920;

    // Older than any write in progress could be (each write touches the file), young enough that
    // what a crash left behind does not pile up.
    private static readonly TimeSpan StaleTempAge = TimeSpan.FromHours(1);

    private const UnixFileMode BlobMode = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly string _blobs;
    private readonly string _temp;
    private readonly string _quarantine;
    private readonly TimeProvider _time;
    private readonly RecentlyVerified _verified;

    /// <summary>
    /// Opens (creating if needed) the store at <paramref name="root"/> and deletes temporary files
    /// older than an hour, which only a crashed or killed writer leaves behind.
    /// </summary>
    public FileBlobStore(string root, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        Root = Path.GetFullPath(root);
        _blobs = Path.Combine(Root, "blobs", "sha256");
        _temp = Path.Combine(Root, "tmp");
        _quarantine = Path.Combine(Root, "quarantine", "sha256");
        Directory.CreateDirectory(_blobs);
        Directory.CreateDirectory(_temp);
        _time = timeProvider ?? TimeProvider.System;
        _verified = new RecentlyVerified(_time);
        DeleteStaleTempFiles(_time.GetUtcNow());
    }

    /// <summary>The store's folder, as a full path.</summary>
    public string Root { get; }

    public string Location => Root;

    /// <summary>
    /// A new, unused path in the store's temporary folder, on the same file system as the blobs, for a
    /// caller that writes a file and then hands it to <see cref="ImportFileAsync"/>. Nothing is created.
    /// </summary>
    public string NewTempPath() => Path.Combine(_temp, $"{Guid.NewGuid():N}.tmp");

    public Task<bool> ContainsAsync(Digest digest, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(File.Exists(BlobPath(digest)));
    }

    public Task<long?> GetLengthAsync(Digest digest, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var file = new FileInfo(BlobPath(digest));
        return Task.FromResult(file.Exists ? file.Length : (long?)null);
    }

    public async Task PutAsync(Digest expected, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var tempPath = NewTempPath();
        try
        {
            var actual = await WriteTempAsync(tempPath, content, cancellationToken).ConfigureAwait(false);
            if (actual != expected)
            {
                throw BlobIntegrityException.ForPut(expected, actual, Root);
            }

            Commit(tempPath, actual);
        }
        finally
        {
            DeleteFile(tempPath);
        }
    }

    public async Task<Digest> PutAsync(Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var tempPath = NewTempPath();
        try
        {
            var digest = await WriteTempAsync(tempPath, content, cancellationToken).ConfigureAwait(false);
            Commit(tempPath, digest);
            return digest;
        }
        finally
        {
            DeleteFile(tempPath);
        }
    }

    /// <summary>
    /// Moves a file the caller has just written into the store and returns its digest. The file is
    /// consumed, whether this succeeds or not. On the store's file system (see <see cref="NewTempPath"/>)
    /// this is a rename; from another one it is a copy, and the digest is computed from the copy, so it
    /// always names exactly the bytes stored.
    /// </summary>
    public async Task<Digest> ImportFileAsync(string path, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var tempPath = NewTempPath();

        // Moved before hashing, so nothing else knows the name of the bytes being hashed.
        File.Move(path, tempPath);
        try
        {
            MakeWritable(tempPath);
            Digest digest;
            var file = new FileStream(tempPath, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.ReadWrite,
                Share = FileShare.None,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            });
            await using (file.ConfigureAwait(false))
            {
                digest = await Digest.ComputeAsync(file, cancellationToken).ConfigureAwait(false);

                // The caller's writes may still be only in the page cache.
                RandomAccess.FlushToDisk(file.SafeFileHandle);
            }

            Commit(tempPath, digest);
            return digest;
        }
        finally
        {
            DeleteFile(tempPath);
        }
    }

    public async Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken)
    {
        var path = BlobPath(digest);
        FileStream stream;
        try
        {
            stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,

                // Delete: a garbage collector may remove the blob while it is being read (on Unix
                // this is always allowed).
                Share = FileShare.Read | FileShare.Delete,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            });
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new BlobNotFoundException(digest, Root);
        }

        Digest actual;
        try
        {
            actual = await Digest.ComputeAsync(stream, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        if (actual == digest)
        {
            _verified.Remember(digest);
            stream.Position = 0;
            return stream;
        }

        await stream.DisposeAsync().ConfigureAwait(false);
        await QuarantineAsync(digest, cancellationToken).ConfigureAwait(false);
        throw BlobIntegrityException.ForStoredBlob(digest, actual, Root);
    }

    public async Task<bool> VerifyAsync(Digest digest, TimeSpan trust, CancellationToken cancellationToken)
    {
        if (_verified.Within(digest, trust) && File.Exists(BlobPath(digest)))
        {
            return false;
        }

        var stream = await OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
        await stream.DisposeAsync().ConfigureAwait(false);
        return true;
    }

    public Task<bool> QuarantineAsync(Digest digest, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _verified.Forget(digest);
        Directory.CreateDirectory(_quarantine);
        try
        {
            // A rename: the blob's name is free at once, and a reader that has it open keeps reading what it opened.
            File.Move(BlobPath(digest), Path.Combine(_quarantine, digest.Hex), overwrite: true);
            return Task.FromResult(true);
        }
        catch (FileNotFoundException)
        {
            return Task.FromResult(false);
        }
    }

    public async IAsyncEnumerable<Digest> ListQuarantinedAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!Directory.Exists(_quarantine))
        {
            yield break;
        }

        foreach (var path in Directory.EnumerateFiles(_quarantine))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Digest.TryParseHex(Path.GetFileName(path), out var digest))
            {
                yield return digest;
            }
        }
    }

    public async IAsyncEnumerable<Digest> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var path in Directory.EnumerateFiles(_blobs))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Digest.TryParseHex(Path.GetFileName(path), out var digest))
            {
                yield return digest;
            }
        }
    }

    /// <summary>How many blobs the store holds and their bytes, from the folder's listing (no blob is read).</summary>
    public (long Blobs, long Bytes) Measure(CancellationToken cancellationToken)
    {
        long blobs = 0, bytes = 0;
        foreach (var file in new DirectoryInfo(_blobs).EnumerateFiles())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Digest.TryParseHex(file.Name, out _))
            {
                blobs++;
                bytes += file.Length;
            }
        }

        return (blobs, bytes);
    }

    public Task<bool> DeleteAsync(Digest digest, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var path = BlobPath(digest);
        _verified.Forget(digest);
        if (!File.Exists(path))
        {
            return Task.FromResult(false);
        }

        DeleteFile(path);
        return Task.FromResult(true);
    }

    public Task<DateTimeOffset?> GetWrittenAtAsync(Digest digest, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var file = new FileInfo(BlobPath(digest));
        return Task.FromResult(file.Exists ? new DateTimeOffset(file.LastWriteTimeUtc) : (DateTimeOffset?)null);
    }

    public Task TouchAsync(Digest digest, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            File.SetLastWriteTimeUtc(BlobPath(digest), _time.GetUtcNow().UtcDateTime);
        }
        catch (FileNotFoundException)
        {
            // Gone meanwhile; the client's registration will say which blob is missing.
        }

        return Task.CompletedTask;
    }

    private string BlobPath(Digest digest) => Path.Combine(_blobs, digest.Hex);

    /// <summary>Writes <paramref name="content"/> to a new file, hashing it on the way, and flushes it to disk.</summary>
    private static async Task<Digest> WriteTempAsync(string tempPath, Stream content, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        try
        {
            var file = new FileStream(tempPath, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
                Options = FileOptions.Asynchronous,
            });
            await using (file.ConfigureAwait(false))
            {
                int read;
                while ((read = await content.ReadAsync(buffer.AsMemory(0, CopyBufferBytes), cancellationToken).ConfigureAwait(false)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }

                // Without this a crash soon after the rename can leave the blob's name on an empty
                // or partial file (ext4 and XFS write data lazily, metadata first).
                file.Flush(flushToDisk: true);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return Digest.FromHash(hash.GetHashAndReset());
    }

    /// <summary>Renames a checked temporary file to its digest's name.</summary>
    private void Commit(string tempPath, Digest digest)
    {
        var target = BlobPath(digest);
        if (File.Exists(target))
        {
            return;
        }

        MakeReadOnly(tempPath);
        try
        {
            // rename(2) replaces atomically: a concurrent put of the same digest renames identical bytes.
            File.Move(tempPath, target, overwrite: true);
            _verified.Remember(digest);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && File.Exists(target))
        {
            // Windows refuses to replace a read-only file; the put that won the race stored the same bytes.
        }
    }

    /// <summary>
    /// Deletes temporary files older than an hour: partial uploads a crashed or killed writer left. Done at open,
    /// and by gc (a server may run for months). A younger one may be a write still in progress.
    /// </summary>
    internal void DeleteStaleTempFiles(DateTimeOffset now)
    {
        foreach (var file in new DirectoryInfo(_temp).EnumerateFiles())
        {
            if (now - file.LastWriteTimeUtc < StaleTempAge)
            {
                continue;
            }

            try
            {
                DeleteFile(file.FullName);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Another process may be cleaning up too, or still holds it open on Windows; the next
                // start tries again.
            }
        }
    }

    private static void MakeReadOnly(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            File.SetAttributes(path, File.GetAttributes(path) | FileAttributes.ReadOnly);
        }
        else
        {
            File.SetUnixFileMode(path, BlobMode);
        }
    }

    private static void MakeWritable(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            File.SetAttributes(path, File.GetAttributes(path) & ~FileAttributes.ReadOnly);
        }
        else
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    // Blobs are read-only; Unix lets the directory's owner delete them anyway, Windows does not.
    private static void DeleteFile(string path)
    {
        if (OperatingSystem.IsWindows() && File.Exists(path))
        {
            MakeWritable(path);
        }

        File.Delete(path);
    }
}
