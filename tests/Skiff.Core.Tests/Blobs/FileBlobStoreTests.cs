using Skiff.Core.Blobs;

namespace Skiff.Core.Tests.Blobs;

public sealed class FileBlobStoreTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private string StoreRoot => _temp.Combine("store");

    private string BlobsFolder => Path.Combine(StoreRoot, "blobs", "sha256");

    private string TempFolder => Path.Combine(StoreRoot, "tmp");

    [Fact]
    public async Task Put_ThenContainsAndOpen_GiveBackTheSameBytes()
    {
        var store = new FileBlobStore(StoreRoot);
        var content = Some.Bytes(300_000);

        var digest = await store.PutAsync(new MemoryStream(content), CancellationToken.None);

        digest.ShouldBe(Digest.Compute(content));
        (await store.ContainsAsync(digest, CancellationToken.None)).ShouldBeTrue();
        (await store.GetLengthAsync(digest, CancellationToken.None)).ShouldBe(content.Length);
        (await ReadAllAsync(store, digest)).ShouldBe(content);
        File.Exists(Path.Combine(BlobsFolder, digest.Hex)).ShouldBeTrue();
        Directory.EnumerateFileSystemEntries(TempFolder).ShouldBeEmpty();
    }

    [Fact]
    public async Task Put_StoresBlobsReadOnly()
    {
        var store = new FileBlobStore(StoreRoot);

        var digest = await store.PutAsync(new MemoryStream(Some.Bytes(10)), CancellationToken.None);

        var blob = Path.Combine(BlobsFolder, digest.Hex);
        if (OperatingSystem.IsWindows())
        {
            File.GetAttributes(blob).HasFlag(FileAttributes.ReadOnly).ShouldBeTrue();
        }
        else
        {
            File.GetUnixFileMode(blob).ShouldBe(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
    }

    [Fact]
    public async Task PutExpected_MatchingContent_IsStoredAndIdempotent()
    {
        var store = new FileBlobStore(StoreRoot);
        var content = Some.Bytes(1000);
        var digest = Digest.Compute(content);

        await store.PutAsync(digest, new MemoryStream(content), CancellationToken.None);
        await store.PutAsync(digest, new MemoryStream(content), CancellationToken.None);

        (await ReadAllAsync(store, digest)).ShouldBe(content);
        Directory.EnumerateFiles(BlobsFolder).Count().ShouldBe(1);
        Directory.EnumerateFileSystemEntries(TempFolder).ShouldBeEmpty();
    }

    [Fact]
    public async Task PutExpected_WrongDigest_IsRejectedAndTheStoreIsUnchanged()
    {
        var store = new FileBlobStore(StoreRoot);
        var existing = await store.PutAsync(new MemoryStream(Some.Bytes(100, seed: 1)), CancellationToken.None);
        var before = FilesUnder(Path.Combine(StoreRoot, "blobs"));
        var claimed = Digest.Compute(Some.Bytes(100, seed: 2));
        var actual = Some.Bytes(100, seed: 3);

        var error = await Should.ThrowAsync<BlobIntegrityException>(() => store.PutAsync(claimed, new MemoryStream(actual), CancellationToken.None));

        error.Expected.ShouldBe(claimed);
        error.Actual.ShouldBe(Digest.Compute(actual));
        error.Message.ShouldContain(claimed.ToString());
        error.Message.ShouldContain(Digest.Compute(actual).ToString());
        error.Message.ShouldContain("nothing was stored");
        FilesUnder(Path.Combine(StoreRoot, "blobs")).ShouldBe(before);
        Directory.EnumerateFileSystemEntries(TempFolder).ShouldBeEmpty();
        (await store.ContainsAsync(claimed, CancellationToken.None)).ShouldBeFalse();
        (await store.ContainsAsync(existing, CancellationToken.None)).ShouldBeTrue();
    }

    [Fact]
    public async Task PutExpected_WrongContentForABlobAlreadyStored_IsStillRejected()
    {
        var store = new FileBlobStore(StoreRoot);
        var content = Some.Bytes(100);
        var digest = await store.PutAsync(new MemoryStream(content), CancellationToken.None);

        await Should.ThrowAsync<BlobIntegrityException>(() => store.PutAsync(digest, new MemoryStream(Some.Bytes(100, seed: 9)), CancellationToken.None));

        (await ReadAllAsync(store, digest)).ShouldBe(content);
    }

    [Fact]
    public async Task Open_BlobWithAFlippedByte_IsDetectedDeletedAndReported()
    {
        var store = new FileBlobStore(StoreRoot);
        var content = Some.Bytes(50_000);
        var digest = await store.PutAsync(new MemoryStream(content), CancellationToken.None);
        var path = Path.Combine(BlobsFolder, digest.Hex);
        Damage(path, bytes =>
        {
            bytes[25_000] ^= 0x01;
            return bytes;
        });

        var error = await Should.ThrowAsync<BlobIntegrityException>(() => store.OpenReadAsync(digest, CancellationToken.None));

        error.Expected.ShouldBe(digest);
        error.Actual.ShouldNotBe(digest);
        error.Message.ShouldContain($"blob {digest} in the store at {store.Root} did not match its digest (got {error.Actual})");
        error.Message.ShouldContain("discarded and must be put again");
        File.Exists(path).ShouldBeFalse();
        (await store.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
        await Should.ThrowAsync<BlobNotFoundException>(() => store.OpenReadAsync(digest, CancellationToken.None));
    }

    [Fact]
    public async Task Open_TruncatedBlob_IsDetectedDeletedAndReported()
    {
        var store = new FileBlobStore(StoreRoot);
        var digest = await store.PutAsync(new MemoryStream(Some.Bytes(50_000)), CancellationToken.None);
        var path = Path.Combine(BlobsFolder, digest.Hex);
        Damage(path, bytes => bytes[..(bytes.Length / 2)]);

        var error = await Should.ThrowAsync<BlobIntegrityException>(() => store.OpenReadAsync(digest, CancellationToken.None));

        error.Message.ShouldContain("discarded");
        File.Exists(path).ShouldBeFalse();
    }

    [Fact]
    public async Task Open_MissingBlob_ThrowsNotFoundNamingTheDigestAndStore()
    {
        var store = new FileBlobStore(StoreRoot);
        var digest = Digest.Compute("nothing"u8);

        var error = await Should.ThrowAsync<BlobNotFoundException>(() => store.OpenReadAsync(digest, CancellationToken.None));

        error.Digest.ShouldBe(digest);
        error.Message.ShouldContain(digest.ToString());
        error.Message.ShouldContain(store.Root);
        (await store.GetLengthAsync(digest, CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task Put_SameContentConcurrentlyFromTwoStoresOnOneRoot_StoresExactlyOneBlob()
    {
        var first = new FileBlobStore(StoreRoot);
        var second = new FileBlobStore(StoreRoot);
        const int Rounds = 40;

        for (var round = 0; round < Rounds; round++)
        {
            var content = Some.Bytes(64 * 1024 + round, seed: round);
            var expected = Digest.Compute(content);

            var puts = new List<Task<Digest>>();
            foreach (var store in new[] { first, second, first, second })
            {
                puts.Add(Task.Run(() => store.PutAsync(new MemoryStream(content), CancellationToken.None)));
                puts.Add(Task.Run(async () =>
                {
                    await store.PutAsync(expected, new MemoryStream(content), CancellationToken.None);
                    return expected;
                }));
            }

            (await Task.WhenAll(puts)).ShouldAllBe(d => d == expected);
            (await ReadAllAsync(second, expected)).ShouldBe(content);
        }

        Directory.EnumerateFiles(BlobsFolder).Count().ShouldBe(Rounds);
        Directory.EnumerateFileSystemEntries(TempFolder).ShouldBeEmpty();
    }

    [Fact]
    public async Task ImportFile_FromTheStoresTempFolder_MovesItIn()
    {
        var store = new FileBlobStore(StoreRoot);
        var content = Some.Bytes(10_000);
        var staged = store.NewTempPath();
        await File.WriteAllBytesAsync(staged, content);

        var digest = await store.ImportFileAsync(staged, CancellationToken.None);

        digest.ShouldBe(Digest.Compute(content));
        File.Exists(staged).ShouldBeFalse();
        (await ReadAllAsync(store, digest)).ShouldBe(content);
        Directory.EnumerateFileSystemEntries(TempFolder).ShouldBeEmpty();
    }

    [Fact]
    public async Task ImportFile_FromElsewhere_MovesItIn()
    {
        var store = new FileBlobStore(StoreRoot);
        var content = Some.Bytes(10_000);
        var source = _temp.WriteFile("build/output.tar.gz", content);

        var digest = await store.ImportFileAsync(source, CancellationToken.None);

        digest.ShouldBe(Digest.Compute(content));
        File.Exists(source).ShouldBeFalse();
        (await ReadAllAsync(store, digest)).ShouldBe(content);
        Directory.EnumerateFileSystemEntries(TempFolder).ShouldBeEmpty();
    }

    [Fact]
    public async Task ImportFile_FromAnotherFileSystem_CopiesItIn()
    {
        // /dev/shm is a tmpfs on Linux, so the move into the store cannot be a rename. xunit 2 has no
        // runtime skip; elsewhere there is nothing to test.
        if (!Directory.Exists("/dev/shm"))
        {
            return;
        }

        var store = new FileBlobStore(StoreRoot);
        var content = Some.Bytes(10_000);
        var source = Path.Combine("/dev/shm", $"skiff-tests-{Guid.NewGuid():N}");
        await File.WriteAllBytesAsync(source, content);

        try
        {
            var digest = await store.ImportFileAsync(source, CancellationToken.None);

            digest.ShouldBe(Digest.Compute(content));
            File.Exists(source).ShouldBeFalse();
            (await ReadAllAsync(store, digest)).ShouldBe(content);
        }
        finally
        {
            File.Delete(source);
        }
    }

    [Fact]
    public async Task ImportFile_AlreadyStored_ConsumesTheFileAndKeepsOneBlob()
    {
        var store = new FileBlobStore(StoreRoot);
        var content = Some.Bytes(1000);
        await store.PutAsync(new MemoryStream(content), CancellationToken.None);
        var source = _temp.WriteFile("again.bin", content);

        await store.ImportFileAsync(source, CancellationToken.None);

        File.Exists(source).ShouldBeFalse();
        Directory.EnumerateFiles(BlobsFolder).Count().ShouldBe(1);
        Directory.EnumerateFileSystemEntries(TempFolder).ShouldBeEmpty();
    }

    [Fact]
    public async Task List_ListsExactlyWhatWasPutAndIgnoresJunk()
    {
        var store = new FileBlobStore(StoreRoot);
        var put = new List<Digest>();
        for (var i = 0; i < 3; i++)
        {
            put.Add(await store.PutAsync(new MemoryStream(Some.Bytes(100, seed: i)), CancellationToken.None));
        }

        var hex = put[0].Hex;
        await File.WriteAllTextAsync(Path.Combine(BlobsFolder, "README"), "junk");
        await File.WriteAllTextAsync(Path.Combine(BlobsFolder, hex.ToUpperInvariant()), "junk");
        await File.WriteAllTextAsync(Path.Combine(BlobsFolder, hex[..63]), "junk");
        await File.WriteAllTextAsync(Path.Combine(BlobsFolder, hex + ".tmp"), "junk");
        Directory.CreateDirectory(Path.Combine(BlobsFolder, Digest.Compute("folder"u8).Hex));

        var listed = new List<Digest>();
        await foreach (var digest in store.ListAsync(CancellationToken.None))
        {
            listed.Add(digest);
        }

        listed.Order().ShouldBe(put.Order());
    }

    [Fact]
    public async Task Delete_RemovesTheBlobOnce()
    {
        var store = new FileBlobStore(StoreRoot);
        var digest = await store.PutAsync(new MemoryStream(Some.Bytes(100)), CancellationToken.None);

        (await store.DeleteAsync(digest, CancellationToken.None)).ShouldBeTrue();
        (await store.DeleteAsync(digest, CancellationToken.None)).ShouldBeFalse();
        (await store.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public void Construction_DeletesTempFilesOlderThanAnHour()
    {
        var now = new DateTimeOffset(2030, 6, 1, 12, 0, 0, TimeSpan.Zero);
        Directory.CreateDirectory(TempFolder);
        var stale = Path.Combine(TempFolder, "stale.tmp");
        var fresh = Path.Combine(TempFolder, "fresh.tmp");
        File.WriteAllText(stale, "left by a crash");
        File.WriteAllText(fresh, "being written");
        File.SetLastWriteTimeUtc(stale, now.AddHours(-2).UtcDateTime);
        File.SetLastWriteTimeUtc(fresh, now.AddMinutes(-5).UtcDateTime);

        _ = new FileBlobStore(StoreRoot, new FixedTimeProvider(now));

        File.Exists(stale).ShouldBeFalse();
        File.Exists(fresh).ShouldBeTrue();
    }

    private static async Task<byte[]> ReadAllAsync(IBlobStore store, Digest digest)
    {
        await using var stream = await store.OpenReadAsync(digest, CancellationToken.None);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    private static void Damage(string blob, Func<byte[], byte[]> change)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(blob, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        else
        {
            File.SetAttributes(blob, FileAttributes.Normal);
        }

        File.WriteAllBytes(blob, change(File.ReadAllBytes(blob)));
    }

    private static string[] FilesUnder(string folder) =>
        [.. Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)];

    private sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
