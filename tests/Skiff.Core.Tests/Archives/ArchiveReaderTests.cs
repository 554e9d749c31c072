using System.Formats.Tar;
using System.IO.Compression;
using Skiff.Core.Archives;

namespace Skiff.Core.Tests.Archives;

/// <summary>
/// Hostile archives are built with TarWriter and GZipStream directly, the way an attacker (or another
/// tool) would, not with ArchiveWriter, which refuses to write them.
/// </summary>
public sealed class ArchiveReaderTests : IDisposable
{
    private const string ArchiveName = "blob sha256:ab12test";
    private const int MiB = 1024 * 1024;

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("../evil.txt", "'..' segment")]
    [InlineData("lib/../../evil.txt", "'..' segment")]
    [InlineData("/etc/evil", "absolute")]
    [InlineData("lib//a.txt", "empty segment")]
    [InlineData("./a.txt", "'.' segment")]
    [InlineData("lib\\..\\evil.txt", "backslash")]
    public async Task Read_UnsafePath_IsRejectedAndNamed(string path, string problem)
    {
        var archive = Archive(tar => tar.WriteEntry(File(path, "pwned")));

        var error = await RejectedAsync(archive);

        error.EntryPath.ShouldBe(path);
        error.Message.ShouldContain($"'{path}'");
        error.Message.ShouldContain(problem);
        error.Message.ShouldContain(ArchiveName);
    }

    [Fact]
    public async Task Read_SymbolicLink_IsRejectedAndNamed()
    {
        var archive = Archive(tar => tar.WriteEntry(new UstarTarEntry(TarEntryType.SymbolicLink, "lib/link") { LinkName = "/etc/passwd" }));

        var error = await RejectedAsync(archive);

        error.Message.ShouldContain("'lib/link'");
        error.Message.ShouldContain("symbolic link");
    }

    [Fact]
    public async Task Read_HardLink_IsRejectedAndNamed()
    {
        var archive = Archive(tar =>
        {
            tar.WriteEntry(File("a.txt", "a"));
            tar.WriteEntry(new UstarTarEntry(TarEntryType.HardLink, "b.txt") { LinkName = "a.txt" });
        });

        var error = await RejectedAsync(archive);

        error.Message.ShouldContain("'b.txt'");
        error.Message.ShouldContain("hard link");
    }

    [Fact]
    public async Task Read_DirectoryEntry_IsRejectedAndNamed()
    {
        var archive = Archive(tar =>
        {
            tar.WriteEntry(new UstarTarEntry(TarEntryType.Directory, "lib/"));
            tar.WriteEntry(File("lib/a.txt", "a"));
        });

        var error = await RejectedAsync(archive);

        error.Message.ShouldContain("'lib/'");
        error.Message.ShouldContain("directory entry");
    }

    [Fact]
    public async Task Read_FifoEntry_IsRejectedAndNamed()
    {
        var archive = Archive(tar => tar.WriteEntry(new UstarTarEntry(TarEntryType.Fifo, "pipe")));

        var error = await RejectedAsync(archive);

        error.Message.ShouldContain("'pipe'");
        error.Message.ShouldContain("Fifo");
    }

    [Fact]
    public async Task Read_PaxEntry_IsRejectedAndNamed()
    {
        var archive = Archive(tar => tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "a.txt") { DataStream = new MemoryStream(Some.Text("a")) }), TarEntryFormat.Pax);

        var error = await RejectedAsync(archive);

        error.Message.ShouldContain("'a.txt'");
        error.Message.ShouldContain("Pax");
    }

    [Fact]
    public async Task Read_GnuLongNameEntry_IsRejected()
    {
        var name = new string('x', 120) + ".txt";
        var archive = Archive(tar => tar.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Some.Text("a")) }), TarEntryFormat.Gnu);

        var error = await RejectedAsync(archive);

        error.Message.ShouldContain(name);
        error.Message.ShouldContain("Gnu");
    }

    [Fact]
    public async Task Read_DuplicateEntry_IsRejectedAndNamed()
    {
        var archive = Archive(tar =>
        {
            tar.WriteEntry(File("a.txt", "first"));
            tar.WriteEntry(File("a.txt", "second"));
        });

        var error = await RejectedAsync(archive);

        error.Message.ShouldContain("'a.txt'");
        error.Message.ShouldContain("twice");
    }

    [Fact]
    public async Task Read_UnsortedEntries_AreRejectedAndNamed()
    {
        var archive = Archive(tar =>
        {
            tar.WriteEntry(File("b.txt", "b"));
            tar.WriteEntry(File("a.txt", "a"));
        });

        var error = await RejectedAsync(archive);

        error.Message.ShouldContain("'a.txt'");
        error.Message.ShouldContain("out of order");
    }

    [Fact]
    public async Task Read_FileInsideAFile_IsRejectedAndNamed()
    {
        var archive = Archive(tar =>
        {
            tar.WriteEntry(File("a", "a"));
            tar.WriteEntry(File("a/b", "b"));
        });

        var error = await RejectedAsync(archive);

        error.Message.ShouldContain("'a/b'");
        error.Message.ShouldContain("which is a file");
    }

    [Fact]
    public async Task Read_EntryOverMaxEntryBytes_IsRejectedBeforeItsDataIsWritten()
    {
        var archive = Archive(tar =>
        {
            tar.WriteEntry(File("a.txt", "small"));
            tar.WriteEntry(File("big.bin", Some.Bytes(2000)));
        });

        var error = await RejectedAsync(archive, new ArchiveLimits { MaxEntryBytes = 1024 }, out var destination);

        error.Message.ShouldContain("'big.bin'");
        error.Message.ShouldContain("2000 bytes");
        System.IO.File.Exists(Path.Combine(destination, "big.bin")).ShouldBeFalse();
    }

    [Fact]
    public async Task Read_TooManyEntries_IsRejectedAndNamed()
    {
        var archive = Archive(tar =>
        {
            tar.WriteEntry(File("a", "a"));
            tar.WriteEntry(File("b", "b"));
            tar.WriteEntry(File("c", "c"));
        });

        var error = await RejectedAsync(archive, new ArchiveLimits { MaxEntries = 2 }, out _);

        error.Message.ShouldContain("'c'");
        error.Message.ShouldContain("limit of 2 entries");
    }

    [Fact]
    public async Task Read_Bomb_OneEntryOf64MiBZeros_IsRejectedWithoutWritingPastTheLimit()
    {
        var archive = Archive(tar => tar.WriteEntry(File("zeros.bin", new byte[64 * MiB])));
        archive.Length.ShouldBeLessThan(MiB, "the bomb should compress to almost nothing");

        var error = await RejectedAsync(archive, new ArchiveLimits { MaxTotalBytes = 16 * MiB }, out var destination);

        error.Message.ShouldContain("'zeros.bin'");
        error.Message.ShouldContain("limit");
        BytesUnder(destination).ShouldBeLessThanOrEqualTo(16 * MiB);
    }

    [Fact]
    public async Task Read_Bomb_ManyEntriesOfZeros_IsRejectedWithoutWritingPastTheLimit()
    {
        var archive = Archive(tar =>
        {
            for (var i = 0; i < 16; i++)
            {
                tar.WriteEntry(File($"zeros-{i:D2}.bin", new byte[4 * MiB]));
            }
        });

        var error = await RejectedAsync(archive, new ArchiveLimits { MaxTotalBytes = 16 * MiB }, out var destination);

        error.Message.ShouldContain("limit");
        BytesUnder(destination).ShouldBeLessThanOrEqualTo(16 * MiB);
    }

    [Fact]
    public async Task Read_Bomb_ZerosAfterTheEndOfArchive_AreCountedAndRejected()
    {
        var archive = Archive(
            tar => tar.WriteEntry(File("a.txt", "a")),
            afterTar: gzip =>
            {
                var zeros = new byte[MiB];
                for (var i = 0; i < 64; i++)
                {
                    gzip.Write(zeros);
                }
            });

        var error = await RejectedAsync(archive, new ArchiveLimits { MaxTotalBytes = 16 * MiB }, out _);

        error.Message.ShouldContain("limit of 16777216 bytes");
    }

    [Fact]
    public async Task Read_DataAfterTheEndOfArchive_IsRejected()
    {
        var archive = Archive(tar => tar.WriteEntry(File("a.txt", "a")), afterTar: gzip => gzip.Write(Some.Text("smuggled")));

        var error = await RejectedAsync(archive);

        error.Message.ShouldContain("after its end-of-archive marker");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(10)]
    [InlineData(300)]
    [InlineData(2000)]
    [InlineData(-9)]
    [InlineData(-8)]
    [InlineData(-4)]
    [InlineData(-1)]
    public async Task Read_TruncatedStream_IsRejected(int cut)
    {
        var archive = await ValidArchiveAsync();
        var truncated = archive[..(cut >= 0 ? cut : archive.Length + cut)];

        var error = await RejectedAsync(truncated);

        error.Message.ShouldContain(ArchiveName);
    }

    [Theory]
    [InlineData(0.25)]
    [InlineData(0.5)]
    [InlineData(0.75)]
    public async Task Read_CorruptedByteInTheCompressedData_IsRejected(double where)
    {
        var archive = await ValidArchiveAsync();
        archive[(int)(archive.Length * where)] ^= 0x55;

        await RejectedAsync(archive);
    }

    [Theory]
    [InlineData(-8)]
    [InlineData(-5)]
    [InlineData(-4)]
    [InlineData(-1)]
    public async Task Read_CorruptedGzipTrailer_IsRejected(int fromEnd)
    {
        var archive = await ValidArchiveAsync();
        archive[^-fromEnd] ^= 0x01;

        await RejectedAsync(archive);
    }

    [Fact]
    public async Task Read_GarbageAfterTheGzipStream_IsRejected()
    {
        var archive = await ValidArchiveAsync();

        var error = await RejectedAsync([.. archive, .. Some.Text("garbage")]);

        error.Message.ShouldContain("data after its end");
    }

    [Fact]
    public async Task Read_SecondGzipMember_IsRejected()
    {
        var archive = await ValidArchiveAsync();

        await RejectedAsync([.. archive, .. archive]);
    }

    [Fact]
    public async Task Read_ValidArchive_IsAccepted()
    {
        var archive = await ValidArchiveAsync();

        (await ArchiveReader.ListAsync(new MemoryStream(archive), ArchiveName, ArchiveLimits.Default, CancellationToken.None))
            .Select(e => e.Path).ShouldBe(["a.txt", "lib/b.bin", "lib/c.bin"]);
    }

    [Fact]
    public async Task ExtractAsync_DestinationNotEmpty_IsRefused()
    {
        var destination = _temp.CreateDirectory("not-empty");
        await System.IO.File.WriteAllTextAsync(Path.Combine(destination, "existing"), "x");

        await Should.ThrowAsync<ArgumentException>(() => ArchiveReader.ExtractAsync(new MemoryStream(), destination, ArchiveName, ArchiveLimits.Default, CancellationToken.None));
    }

    [Fact]
    public void Limits_NotPositive_AreRefused()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => new ArchiveLimits { MaxTotalBytes = 0 });
        Should.Throw<ArgumentOutOfRangeException>(() => new ArchiveLimits { MaxEntryBytes = -1 });
        Should.Throw<ArgumentOutOfRangeException>(() => new ArchiveLimits { MaxEntries = 0 });
    }

    private async Task<byte[]> ValidArchiveAsync()
    {
        var files = new[]
        {
            new ArchiveFile("a.txt", _temp.WriteFile("src/a.txt", Some.Text("a"))),
            new ArchiveFile("lib/b.bin", _temp.WriteFile("src/b.bin", Some.Bytes(3000, seed: 2))),
            new ArchiveFile("lib/c.bin", _temp.WriteFile("src/c.bin", Some.Bytes(5000, seed: 3))),
        };
        using var destination = new MemoryStream();
        await ArchiveWriter.WriteAsync(destination, files, CancellationToken.None);
        return destination.ToArray();
    }

    private Task<UnsafeArchiveException> RejectedAsync(byte[] archive) => RejectedAsync(archive, ArchiveLimits.Default, out _);

    /// <summary>Both extracting and listing must reject; returns the extraction's error.</summary>
    private Task<UnsafeArchiveException> RejectedAsync(byte[] archive, ArchiveLimits limits, out string destination)
    {
        var target = destination = _temp.CreateDirectory($"extract-{Guid.NewGuid():N}");
        return Check();

        async Task<UnsafeArchiveException> Check()
        {
            var listed = await Should.ThrowAsync<UnsafeArchiveException>(() => ArchiveReader.ListAsync(new MemoryStream(archive), ArchiveName, limits, CancellationToken.None));
            var extracted = await Should.ThrowAsync<UnsafeArchiveException>(() => ArchiveReader.ExtractAsync(new MemoryStream(archive), target, ArchiveName, limits, CancellationToken.None));
            extracted.Message.ShouldBe(listed.Message);
            extracted.Message.ShouldContain("Nothing from it was put in place");
            return extracted;
        }
    }

    private static long BytesUnder(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    private static UstarTarEntry File(string name, string content) => File(name, Some.Text(content));

    private static UstarTarEntry File(string name, byte[] content) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) };

    private static byte[] Archive(Action<TarWriter> writeEntries, TarEntryFormat format = TarEntryFormat.Ustar, Action<Stream>? afterTar = null)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            using (var tar = new TarWriter(gzip, format, leaveOpen: true))
            {
                writeEntries(tar);
            }

            afterTar?.Invoke(gzip);
        }

        return output.ToArray();
    }
}
