using Skiff.Core.Blobs;
using Skiff.Core.Materialization;

namespace Skiff.Core.Tests.Materialization;

public sealed class MaterializerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Unpacks_packages_and_source_into_folders_named_by_digest()
    {
        var store = new FileBlobStore(Path.Combine(_temp.Path, "store"));
        var release = await Some.ReleaseAsync(store, _temp.Path);
        var materializer = new Materializer(store, Path.Combine(_temp.Path, "cache"));

        var result = await materializer.MaterializeAsync(release.Release, CancellationToken.None);

        File.ReadAllText(Path.Combine(materializer.PackagesDirectory, release.Package.Hex, "lib/net10.0/Lib.dll")).ShouldBe("library bytes");
        result.SourceDirectory.ShouldBe(Path.Combine(materializer.SourcesDirectory, release.Source.Hex));
        File.ReadAllText(Path.Combine(result.SourceDirectory, "App.dll")).ShouldBe("app");
        result.ExecArguments(["x"]).ShouldBe(
        [
            "exec",
            "--runtimeconfig", Path.Combine(result.SourceDirectory, "App.runtimeconfig.json"),
            "--depsfile", Path.Combine(result.SourceDirectory, "App.deps.json"),
            "--additionalprobingpath", materializer.PackagesDirectory,
            Path.Combine(result.SourceDirectory, "App.dll"),
            "x",
        ]);
        Directory.EnumerateFileSystemEntries(Path.Combine(_temp.Path, "cache", "tmp")).ShouldBeEmpty();
    }

    [Fact]
    public async Task Two_materializers_racing_for_the_same_release_both_succeed()
    {
        var store = new FileBlobStore(Path.Combine(_temp.Path, "store"));
        var release = await Some.ReleaseAsync(store, _temp.Path);

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ =>
            Task.Run(() => new Materializer(store, Path.Combine(_temp.Path, "cache")).MaterializeAsync(release.Release, CancellationToken.None))));

        results.Select(r => r.SourceDirectory).Distinct().Count().ShouldBe(1);
        File.ReadAllText(Path.Combine(results[0].SourceDirectory, "App.dll")).ShouldBe("app");
        Directory.EnumerateFileSystemEntries(Path.Combine(_temp.Path, "cache", "tmp")).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_damaged_blob_is_reported_and_leaves_no_folder_behind()
    {
        var store = new FileBlobStore(Path.Combine(_temp.Path, "store"));
        var release = await Some.ReleaseAsync(store, _temp.Path);
        var blobPath = Path.Combine(store.Root, "blobs", "sha256", release.Source.Hex);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(blobPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        var bytes = File.ReadAllBytes(blobPath);
        bytes[^10] ^= 0xff;
        File.WriteAllBytes(blobPath, bytes);
        var materializer = new Materializer(store, Path.Combine(_temp.Path, "cache"));

        var error = await Should.ThrowAsync<BlobIntegrityException>(() => materializer.MaterializeAsync(release.Release, CancellationToken.None));

        error.Message.ShouldContain(release.Source.ToString());
        Directory.Exists(Path.Combine(materializer.SourcesDirectory, release.Source.Hex)).ShouldBeFalse();
    }
}
