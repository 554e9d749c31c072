using Skiff.Server.Hosting;

namespace Skiff.Server.Tests.Hosting;

/// <summary>The server's token and secrets key files: owner-only, written whole, and the first one written kept.</summary>
public sealed class PrivateFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("skiff-private-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void A_token_file_is_made_once_readable_by_its_owner_only_and_a_second_server_reads_the_first_token()
    {
        var path = Path.Combine(_folder, "data", "token");

        var first = TokenFile.ReadOrCreate(path);
        PrivateFile.CreateOnce(path, "skiff_written_by_a_server_that_came_second");
        var second = TokenFile.ReadOrCreate(path);

        first.ShouldStartWith("skiff_");
        second.ShouldBe(first, "the file that came first is kept, so no server goes on with a token the file does not hold");
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(path).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        Directory.GetFiles(Path.GetDirectoryName(path)!).ShouldBe([path], "no temporary file is left beside it");
    }
}
