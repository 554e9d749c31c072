using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using Skiff.Core.Archives;

namespace Skiff.Core.Tests.Archives;

public sealed class ArchiveWriterTests : IDisposable
{
    private static readonly (string Path, byte[] Content)[] Files =
    [
        ("lib/net8.0/App.dll", Some.Bytes(70_000, seed: 1)),
        ("App.deps.json", Some.Text("{ \"runtimeTarget\": {} }\n")),
        ("runtimes/linux-x64/native/libe_sqlite3.so", Some.Bytes(5_000, seed: 2)),
        ("empty.txt", []),
        ("lib/net8.0/de/App.resources.dll", Some.Bytes(513, seed: 3)),
        ("lib/net8.0-windows/App.dll", Some.Bytes(512, seed: 4)),
    ];

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task WriteAsync_SameFilesInTwoDirectoriesWithDifferentMetadata_GivesIdenticalBytes()
    {
        var first = Materialize("one", new DateTime(2011, 3, 4, 5, 6, 7, DateTimeKind.Utc), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var second = Materialize("second-folder/deeper", new DateTime(2024, 12, 31, 23, 59, 59, DateTimeKind.Utc),
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);

        var one = await WriteAsync(first);
        var two = await WriteAsync(Enumerable.Reverse(second));

        two.ShouldBe(one);
        (await WriteAsync(first)).ShouldBe(one, "writing the same files again must give the same bytes");
    }

    [Fact]
    public async Task WriteAsync_Output_IsListedByGnuTarAsSortedPlainFiles()
    {
        var archive = _temp.Combine("out.tar.gz");
        await File.WriteAllBytesAsync(archive, await WriteAsync(Materialize("src")));

        var listing = await RunTarAsync("-tzvf", archive);

        var lines = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var expected = Files.OrderBy(f => f.Path, StringComparer.Ordinal).ToArray();
        lines.Length.ShouldBe(expected.Length, listing);
        for (var i = 0; i < lines.Length; i++)
        {
            // -rw-r--r-- 0/0   70000 2000-01-01 00:00 lib/net8.0/App.dll
            var fields = lines[i].Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            fields[0].ShouldBe("-rw-r--r--", lines[i]);
            fields[1].ShouldBe("0/0", lines[i]);
            fields[2].ShouldBe(expected[i].Content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), lines[i]);
            fields[3].ShouldBe("2000-01-01", lines[i]);
            fields[4].ShouldBe("00:00", lines[i]);
            fields[5].ShouldBe(expected[i].Path);
        }
    }

    [Fact]
    public async Task WriteAsync_Output_IsExtractedByGnuTarToTheSameFiles()
    {
        var archive = _temp.Combine("out.tar.gz");
        await File.WriteAllBytesAsync(archive, await WriteAsync(Materialize("src")));
        var extracted = _temp.CreateDirectory("extracted");

        await RunTarAsync("-xzf", archive, "-C", extracted);

        foreach (var (path, content) in Files)
        {
            (await File.ReadAllBytesAsync(Path.Combine(extracted, path))).ShouldBe(content, path);
        }
    }

    [Fact]
    public async Task WriteAsync_GzipFraming_IsFixedHeaderDeflateAndTrailer()
    {
        var bytes = await WriteAsync(Materialize("src"));

        bytes[..10].ShouldBe(new byte[] { 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff });

        using var expanded = new MemoryStream();
        using (var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress))
        {
            await gzip.CopyToAsync(expanded);
        }

        var tar = expanded.ToArray();
        BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 8)).ShouldBe(Crc32.Compute(tar));
        BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4)).ShouldBe((uint)tar.Length);

        // The same deflate stream, framed by hand, is exactly what sits between header and trailer.
        using var deflated = new MemoryStream();
        await using (var deflate = new DeflateStream(deflated, CompressionLevel.Optimal, leaveOpen: true))
        {
            await deflate.WriteAsync(tar);
        }

        bytes[10..^8].ShouldBe(deflated.ToArray());
    }

    [Fact]
    public async Task WriteAsync_LeavesTheDestinationOpen()
    {
        using var destination = new MemoryStream();

        await ArchiveWriter.WriteAsync(destination, Materialize("src"), CancellationToken.None);

        destination.CanWrite.ShouldBeTrue();
        destination.Length.ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task WriteAsync_ThenExtractAsync_GivesBackEveryFile()
    {
        var extracted = _temp.CreateDirectory("extracted");

        await ArchiveReader.ExtractAsync(new MemoryStream(await WriteAsync(Materialize("src"))), extracted, "test archive", ArchiveLimits.Default, CancellationToken.None);

        Directory.EnumerateFiles(extracted, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(extracted, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ShouldBe(Files.Select(f => f.Path).Order(StringComparer.Ordinal));
        foreach (var (path, content) in Files)
        {
            var file = Path.Combine(extracted, path);
            (await File.ReadAllBytesAsync(file)).ShouldBe(content, path);
            if (!OperatingSystem.IsWindows())
            {
                File.GetUnixFileMode(file).ShouldBe(ArchiveWriter.EntryMode, path);
            }
        }

        if (!OperatingSystem.IsWindows())
        {
            foreach (var folder in Directory.EnumerateDirectories(extracted, "*", SearchOption.AllDirectories))
            {
                File.GetUnixFileMode(folder).ShouldBe((UnixFileMode)0b111_101_101, folder);
            }
        }
    }

    [Fact]
    public async Task ListAsync_WrittenArchive_ListsEveryFileInOrderWithItsLength()
    {
        var entries = await ArchiveReader.ListAsync(new MemoryStream(await WriteAsync(Materialize("src"))), "test archive", ArchiveLimits.Default, CancellationToken.None);

        entries.ShouldBe(Files.OrderBy(f => f.Path, StringComparer.Ordinal).Select(f => new ArchiveEntryInfo(f.Path, f.Content.Length)));
    }

    [Fact]
    public async Task WriteAsync_NoFiles_WritesAnEmptyArchiveTheReaderAccepts()
    {
        var bytes = await WriteAsync([]);

        (await ArchiveReader.ListAsync(new MemoryStream(bytes), "test archive", ArchiveLimits.Default, CancellationToken.None)).ShouldBeEmpty();
        var archive = _temp.Combine("empty.tar.gz");
        await File.WriteAllBytesAsync(archive, bytes);
        (await RunTarAsync("-tzvf", archive)).ShouldBeEmpty();
    }

    [Fact]
    public async Task WriteAsync_LongPathThatSplitsIntoPrefixAndName_RoundTrips()
    {
        var path = new string('p', 150) + "/" + new string('n', 100);
        var source = _temp.WriteFile("long", Some.Text("long"));

        var bytes = await WriteAsync([new ArchiveFile(path, source)]);

        (await ArchiveReader.ListAsync(new MemoryStream(bytes), "test archive", ArchiveLimits.Default, CancellationToken.None))
            .ShouldBe([new ArchiveEntryInfo(path, 4)]);
    }

    [Theory]
    [InlineData("../escape.txt", "'..' segment")]
    [InlineData("lib/../../escape.txt", "'..' segment")]
    [InlineData("./a.txt", "'.' segment")]
    [InlineData("/etc/passwd", "absolute")]
    [InlineData("lib//a.txt", "empty segment")]
    [InlineData("lib/", "empty segment")]
    [InlineData("lib\\a.txt", "backslash")]
    [InlineData("a\0b", "NUL")]
    [InlineData("", "empty")]
    public async Task WriteAsync_UnsafePath_IsRefusedAndNamed(string path, string problem)
    {
        var source = _temp.WriteFile("file", Some.Text("x"));

        var error = await Should.ThrowAsync<ArchiveInputException>(() => WriteAsync([new ArchiveFile(path, source)]));

        error.Path.ShouldBe(path);
        error.Message.ShouldContain($"'{path}'");
        error.Message.ShouldContain(problem);
    }

    [Theory]
    [InlineData(101, 0)]
    [InlineData(156, 10)]
    [InlineData(10, 101)]
    public async Task WriteAsync_PathThatDoesNotFitUstar_IsRefusedAndNamed(int folderLength, int nameLength)
    {
        var path = nameLength == 0 ? new string('a', folderLength) : new string('a', folderLength) + "/" + new string('b', nameLength);
        var source = _temp.WriteFile("file", Some.Text("x"));

        var error = await Should.ThrowAsync<ArchiveInputException>(() => WriteAsync([new ArchiveFile(path, source)]));

        error.Message.ShouldContain($"'{path}'");
        error.Message.ShouldContain("ustar");
    }

    [Fact]
    public async Task WriteAsync_PathThatSystemFormatsTarCannotSplit_IsRefusedBeforeAnythingIsWritten()
    {
        // Splittable as 100 + 71, but TarWriter only tries 161 + 10 and gives up.
        var path = new string('a', 100) + "/" + new string('b', 60) + "/" + new string('c', 10);
        var source = _temp.WriteFile("file", Some.Text("x"));
        using var destination = new MemoryStream();

        var error = await Should.ThrowAsync<ArchiveInputException>(() => ArchiveWriter.WriteAsync(destination, [new ArchiveFile("a.txt", source), new ArchiveFile(path, source)], CancellationToken.None));

        error.Message.ShouldContain("ustar");
        destination.Length.ShouldBe(0);
    }

    [Fact]
    public async Task WriteAsync_SamePathTwice_IsRefused()
    {
        var source = _temp.WriteFile("file", Some.Text("x"));

        var error = await Should.ThrowAsync<ArchiveInputException>(() => WriteAsync([new ArchiveFile("a/b.txt", source), new ArchiveFile("a/b.txt", source)]));

        error.Message.ShouldContain("'a/b.txt'");
        error.Message.ShouldContain("twice");
    }

    [Fact]
    public async Task WriteAsync_PathThatIsBothFileAndFolder_IsRefused()
    {
        var source = _temp.WriteFile("file", Some.Text("x"));

        var error = await Should.ThrowAsync<ArchiveInputException>(() => WriteAsync([new ArchiveFile("a/b/c.txt", source), new ArchiveFile("a/b.txt", source), new ArchiveFile("a/b", source)]));

        error.Path.ShouldBe("a/b");
        error.Message.ShouldContain("both a file and a folder");
    }

    [Fact]
    public async Task WriteAsync_UnsafePath_WritesNothing()
    {
        var source = _temp.WriteFile("file", Some.Text("x"));
        using var destination = new MemoryStream();

        await Should.ThrowAsync<ArchiveInputException>(() => ArchiveWriter.WriteAsync(destination, [new ArchiveFile("a.txt", source), new ArchiveFile("../b.txt", source)], CancellationToken.None));

        destination.Length.ShouldBe(0);
    }

    private List<ArchiveFile> Materialize(string folder, DateTime? modified = null, UnixFileMode? mode = null)
    {
        var files = new List<ArchiveFile>();
        foreach (var (path, content) in Files)
        {
            var source = _temp.WriteFile($"{folder}/{path}", content);
            if (modified is { } time)
            {
                File.SetLastWriteTimeUtc(source, time);
            }

            if (mode is { } unixMode && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(source, unixMode);
            }

            files.Add(new ArchiveFile(path, source));
        }

        return files;
    }

    private static async Task<byte[]> WriteAsync(IEnumerable<ArchiveFile> files)
    {
        using var destination = new MemoryStream();
        await ArchiveWriter.WriteAsync(destination, files, CancellationToken.None);
        return destination.ToArray();
    }

    private static async Task<string> RunTarAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo("/usr/bin/tar")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment = { ["TZ"] = "UTC", ["LC_ALL"] = "C" },
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var tar = Process.Start(start)!;
        var output = tar.StandardOutput.ReadToEndAsync();
        var error = tar.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await tar.WaitForExitAsync(timeout.Token);
        tar.ExitCode.ShouldBe(0, await error);
        return await output;
    }
}
