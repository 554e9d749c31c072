using System.Formats.Tar;
using System.IO.Compression;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;

namespace Skiff.Core.Tests.Blobs;

/// <summary>What the store does with hostile or damaged uploads: refuses them, names them, changes nothing.</summary>
public sealed class UploadedBlobsTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly FileBlobStore _store;

    public UploadedBlobsTests() => _store = new FileBlobStore(Path.Combine(_temp.Path, "store"));

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A_good_archive_is_stored()
    {
        var bytes = await GoodArchiveAsync();
        var digest = Digest.Compute(bytes);

        await UploadedBlobs.PutAsync(_store, digest, new MemoryStream(bytes), long.MaxValue, ArchiveLimits.Default, CancellationToken.None);

        (await _store.ContainsAsync(digest, CancellationToken.None)).ShouldBeTrue();
    }

    [Fact]
    public async Task Bytes_that_do_not_match_the_digest_are_refused()
    {
        var bytes = await GoodArchiveAsync();
        var claimed = Digest.Compute("something else"u8);

        var error = await Should.ThrowAsync<BlobIntegrityException>(() => PutAsync(claimed, bytes));

        error.Message.ShouldContain(claimed.ToString());
        error.Message.ShouldContain("nothing was stored");
        StoreFiles().ShouldBeEmpty();
    }

    [Fact]
    public async Task A_truncated_blob_is_refused_under_its_own_digest_and_under_the_truncated_bytes_digest()
    {
        var bytes = await GoodArchiveAsync();
        var truncated = bytes[..(bytes.Length / 2)];

        await Should.ThrowAsync<BlobIntegrityException>(() => PutAsync(Digest.Compute(bytes), truncated));
        var error = await Should.ThrowAsync<UnsafeArchiveException>(() => PutAsync(Digest.Compute(truncated), truncated));

        error.Message.ShouldContain($"blob {Digest.Compute(truncated)}");
        StoreFiles().ShouldBeEmpty();
    }

    [Theory]
    [InlineData("../escape.txt")]
    [InlineData("lib/../../escape.txt")]
    [InlineData("/etc/passwd")]
    public async Task An_archive_with_an_unsafe_path_is_refused(string path)
    {
        var bytes = Hostile(tar => tar.WriteEntry(File(path, "x")));

        var error = await Should.ThrowAsync<UnsafeArchiveException>(() => PutAsync(Digest.Compute(bytes), bytes));

        error.Message.ShouldContain($"blob {Digest.Compute(bytes)}");
        error.Message.ShouldContain(path);
        error.Message.ShouldContain("skiff build");
        StoreFiles().ShouldBeEmpty();
    }

    [Theory]
    [InlineData(TarEntryType.SymbolicLink)]
    [InlineData(TarEntryType.HardLink)]
    public async Task An_archive_with_a_link_is_refused(TarEntryType type)
    {
        var bytes = Hostile(tar => tar.WriteEntry(new UstarTarEntry(type, "lib/evil") { LinkName = "/etc/shadow" }));

        var error = await Should.ThrowAsync<UnsafeArchiveException>(() => PutAsync(Digest.Compute(bytes), bytes));

        error.EntryPath.ShouldBe("lib/evil");
        StoreFiles().ShouldBeEmpty();
    }

    [Fact]
    public async Task An_archive_with_a_duplicate_entry_is_refused()
    {
        var bytes = Hostile(tar =>
        {
            tar.WriteEntry(File("a.dll", "one"));
            tar.WriteEntry(File("a.dll", "two"));
        });

        var error = await Should.ThrowAsync<UnsafeArchiveException>(() => PutAsync(Digest.Compute(bytes), bytes));

        error.EntryPath.ShouldBe("a.dll");
        StoreFiles().ShouldBeEmpty();
    }

    [Fact]
    public async Task An_archive_bomb_is_refused()
    {
        // 64 MiB of zeros compress to about 64 KiB; the limit is 8 MiB expanded.
        var bytes = Hostile(tar => tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "zeros.bin") { DataStream = new MemoryStream(new byte[64 * 1024 * 1024]) }));
        var limits = new ArchiveLimits { MaxTotalBytes = 8 * 1024 * 1024 };

        var error = await Should.ThrowAsync<UnsafeArchiveException>(
            () => UploadedBlobs.PutAsync(_store, Digest.Compute(bytes), new MemoryStream(bytes), long.MaxValue, limits, CancellationToken.None));

        bytes.Length.ShouldBeLessThan(1024 * 1024);
        error.Message.ShouldContain($"blob {Digest.Compute(bytes)}");
        StoreFiles().ShouldBeEmpty();
    }

    [Fact]
    public async Task A_manifest_in_canonical_form_is_stored_and_one_that_is_not_is_refused()
    {
        var manifest = Skiff.Core.Manifests.ReleaseManifest.Create(Digest.Compute("e"u8), Digest.Compute("s"u8), "App.dll", sdkVersion: null).ToBytes();
        var reformatted = System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(manifest).Replace(",", ", ", StringComparison.Ordinal));

        await PutAsync(Digest.Compute(manifest), manifest);
        var error = await Should.ThrowAsync<Skiff.Core.Manifests.InvalidManifestException>(() => PutAsync(Digest.Compute(reformatted), reformatted));

        (await _store.ContainsAsync(Digest.Compute(manifest), CancellationToken.None)).ShouldBeTrue();
        error.Message.ShouldContain("canonical form");
        (await _store.ContainsAsync(Digest.Compute(reformatted), CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task Content_over_the_size_limit_is_refused_before_it_is_all_read()
    {
        var bytes = await GoodArchiveAsync();

        var error = await Should.ThrowAsync<BlobTooLargeException>(
            () => UploadedBlobs.PutAsync(_store, Digest.Compute(bytes), new MemoryStream(bytes), maxBytes: 100, ArchiveLimits.Default, CancellationToken.None));

        error.Message.ShouldContain(Digest.Compute(bytes).ToString());
        StoreFiles().ShouldBeEmpty();
    }

    private Task PutAsync(Digest digest, byte[] bytes) =>
        UploadedBlobs.PutAsync(_store, digest, new MemoryStream(bytes), long.MaxValue, ArchiveLimits.Default, CancellationToken.None);

    private List<string> StoreFiles() =>
        [.. Directory.EnumerateFiles(_store.Root, "*", SearchOption.AllDirectories)];

    private async Task<byte[]> GoodArchiveAsync()
    {
        var source = Path.Combine(_temp.Path, "a.dll");
        await System.IO.File.WriteAllBytesAsync(source, Some.Bytes(10_000));
        using var buffer = new MemoryStream();
        await ArchiveWriter.WriteAsync(buffer, [new ArchiveFile("lib/a.dll", source)], CancellationToken.None);
        return buffer.ToArray();
    }

    private static UstarTarEntry File(string path, string content) =>
        new(TarEntryType.RegularFile, path) { DataStream = new MemoryStream(Some.Text(content)) };

    private static byte[] Hostile(Action<TarWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Ustar, leaveOpen: true))
        {
            write(tar);
        }

        return buffer.ToArray();
    }
}
