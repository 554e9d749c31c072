using Skiff.Core.Blobs;
using Skiff.Testing.Blobs;

namespace Skiff.Core.Tests.Blobs;

/// <summary>The blob-store contract on a folder, and what only the file store does (read-only files, imports, temp files).</summary>
public sealed class FileBlobStoreTests : BlobStoreContract
{
    private readonly TempDirectory _temp = new();

    private string StoreRoot => _temp.Combine("store");

    private string BlobsFolder => Path.Combine(StoreRoot, "blobs", "sha256");

    private string TempFolder => Path.Combine(StoreRoot, "tmp");

    private protected override int ConcurrentRounds => 40;

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _temp.Dispose();
    }

    private protected override Task<IBlobStore> CreateStoreAsync() => Task.FromResult<IBlobStore>(new FileBlobStore(StoreRoot));

    private protected override Task<IBlobStore> OpenSameStoreAsync() => CreateStoreAsync();

    private protected override Task DamageAsync(Digest digest, Func<byte[], byte[]> change)
    {
        var blob = Path.Combine(BlobsFolder, digest.Hex);
        File.SetUnixFileMode(blob, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllBytes(blob, change(File.ReadAllBytes(blob)));
        return Task.CompletedTask;
    }

    private protected override Task WriteJunkAsync(string name) => File.WriteAllTextAsync(Path.Combine(BlobsFolder, name), "junk");

    private protected override Task<IReadOnlyList<string>> LeftoversAsync() =>
        Task.FromResult<IReadOnlyList<string>>([.. Directory.EnumerateFileSystemEntries(TempFolder)]);

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
    public async Task Open_DamagedBlob_DeletesItsFile()
    {
        var store = new FileBlobStore(StoreRoot);
        var digest = await store.PutAsync(new MemoryStream(Some.Bytes(1000)), CancellationToken.None);
        await DamageAsync(digest, bytes => bytes[..10]);

        await Should.ThrowAsync<BlobIntegrityException>(() => store.OpenReadAsync(digest, CancellationToken.None));

        File.Exists(Path.Combine(BlobsFolder, digest.Hex)).ShouldBeFalse();
    }

    [Fact]
    public async Task List_IgnoresAFolderNamedLikeADigest()
    {
        var store = new FileBlobStore(StoreRoot);
        var digest = await store.PutAsync(new MemoryStream(Some.Bytes(100)), CancellationToken.None);
        Directory.CreateDirectory(Path.Combine(BlobsFolder, Digest.Compute("folder"u8).Hex));

        (await ListAsync(store)).ShouldBe([digest]);
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

    private sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
