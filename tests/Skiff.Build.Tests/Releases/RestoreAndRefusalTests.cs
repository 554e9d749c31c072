using Skiff.Build.Projects;
using Skiff.Build.Releases;
using Skiff.Build.Restore;
using Skiff.Build.Sources;
using Skiff.Core.Blobs;
using Skiff.Testing;

namespace Skiff.Build.Tests.Releases;

/// <summary>
/// Restores as the lock file says, and what the builder refuses (nothing reaches the store then). Real `dotnet`
/// restores and builds of samples/Hello, copied into temporary folders; apart from <see cref="ReleaseBuilderTests"/> so
/// that the two run side by side.
/// </summary>
public sealed class RestoreAndRefusalTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Path_without_a_project_is_rejected()
    {
        var empty = _workspace.PathTo("empty");
        Directory.CreateDirectory(empty);

        var error = await Should.ThrowAsync<ProjectNotFoundException>(() => BuildAsync(empty, "store"));

        error.Message.ShouldContain("holds no project file");
        BlobFiles("store").ShouldBeEmpty();
    }

    [Fact]
    public async Task Compile_errors_are_reported_and_nothing_reaches_the_store()
    {
        var project = _workspace.CopySample("Hello");
        File.AppendAllText(Path.Combine(project, "Program.cs"), "\nthis is not C#;\n");

        var error = await Should.ThrowAsync<CompilationFailedException>(() => BuildAsync(project, "store"));

        error.Diagnostics.ShouldContain("error CS");
        error.Message.ShouldContain("nothing was put into the store");
        BlobFiles("store").ShouldBeEmpty();
    }

    [Fact]
    public async Task Package_that_cannot_be_restored_is_reported_and_nothing_reaches_the_store()
    {
        var project = _workspace.CopySample("Hello");
        var projectFile = Path.Combine(project, "Hello.csproj");
        File.WriteAllText(projectFile, File.ReadAllText(projectFile).Replace(
            "</ItemGroup>", "  <PackageReference Include=\"Skiff.No.Such.Package\" Version=\"9.9.9\" />\n  </ItemGroup>", StringComparison.Ordinal));

        var error = await Should.ThrowAsync<RestoreFailedException>(() => BuildAsync(project, "store"));

        error.Output.ShouldNotBeNull().ShouldContain("Skiff.No.Such.Package");
        BlobFiles("store").ShouldBeEmpty();
    }

    [Fact]
    public async Task A_locked_project_restores_exactly_what_its_lock_file_says_and_records_it()
    {
        // The shared build is this one: the first build of a fresh copy, with RequireLockFile.
        var (project, _, result, stages) = await BuiltHello.GetAsync();

        result.Environment.Locked.ShouldBeTrue();
        var locked = LockedPackages.Read(project, rid: result.Environment.Rid);
        result.Packages.ToDictionary(p => p.Package.Id, p => p.Package.Version).ShouldBe(locked, ignoreOrder: true);
        stages.Single(s => s.Stage == "restore").Summary.ShouldEndWith(", locked");
    }

    [Fact]
    public async Task After_a_restore_rewrote_the_lock_file_the_next_build_needs_no_restore()
    {
        var project = _workspace.CopySample("Hello");
        var projectFile = Path.Combine(project, "Hello.csproj");
        await BuildAsync(project, "store");
        // A developer's project outside CI: a changed reference rewrites the lock file, as `dotnet build` would.
        File.WriteAllText(projectFile, File.ReadAllText(projectFile)
            .Replace("<RestoreLockedMode Condition=\"'$(CI)' == 'true'\">true</RestoreLockedMode>", "", StringComparison.Ordinal)
            .Replace("\"Newtonsoft.Json\" Version=\"13.0.3\"", "\"Newtonsoft.Json\" Version=\"13.0.1\"", StringComparison.Ordinal));
        var builder = new ReleaseBuilder(new FileBlobStore(_workspace.PathTo("store")));
        var first = new List<StageReport>();
        var second = new List<StageReport>();

        await builder.BuildAsync(new BuildRequest(project), first.Add, CancellationToken.None);
        await builder.BuildAsync(new BuildRequest(project), second.Add, CancellationToken.None);

        // NuGet writes the lock file after the assets file; the next build must still see the restore as current.
        first.Single(s => s.Stage == "restore").Summary.ShouldEndWith("packages.lock.json updated");
        LockedPackages.Read(project)["Newtonsoft.Json"].ShouldBe("13.0.1");
        second.Single(s => s.Stage == "restore").Summary.ShouldStartWith("up to date");
    }

    [Fact]
    public async Task Locked_build_of_a_project_whose_references_moved_from_its_lock_file_names_the_packages_and_stores_nothing()
    {
        var project = _workspace.CopySample("Hello");
        var projectFile = Path.Combine(project, "Hello.csproj");
        var lockFile = Path.Combine(project, "packages.lock.json");
        var lockBefore = File.ReadAllBytes(lockFile);
        File.WriteAllText(projectFile, File.ReadAllText(projectFile).Replace(
            "\"Newtonsoft.Json\" Version=\"13.0.3\"", "\"Newtonsoft.Json\" Version=\"13.0.1\"", StringComparison.Ordinal));

        var error = await Should.ThrowAsync<LockFileException>(() => BuildAsync(project, "store", locked: true));

        error.Message.ShouldContain("Newtonsoft.Json would move from 13.0.3 to 13.0.1");
        error.Message.ShouldContain("dotnet restore --force-evaluate");
        File.ReadAllBytes(lockFile).ShouldBe(lockBefore);
        BlobFiles("store").ShouldBeEmpty();
    }

    [Fact]
    public async Task Locked_build_of_a_project_without_a_lock_file_is_refused_and_an_unlocked_one_is_recorded_as_such()
    {
        var project = _workspace.CopySample("Hello");
        File.Delete(Path.Combine(project, "packages.lock.json"));
        var projectFile = Path.Combine(project, "Hello.csproj");
        File.WriteAllText(projectFile, File.ReadAllText(projectFile).Replace(
            "<RestorePackagesWithLockFile>true</RestorePackagesWithLockFile>", "", StringComparison.Ordinal));

        var error = await Should.ThrowAsync<LockFileException>(() => BuildAsync(project, "store", locked: true));
        var unlocked = await BuildAsync(project, "store-unlocked");

        error.Message.ShouldContain("has no packages.lock.json");
        error.Message.ShouldContain("<RestorePackagesWithLockFile>true</RestorePackagesWithLockFile>");
        BlobFiles("store").ShouldBeEmpty();
        unlocked.Environment.Locked.ShouldBeFalse();
        File.Exists(Path.Combine(project, "packages.lock.json")).ShouldBeFalse();
    }

    private Task<BuildResult> BuildAsync(string project, string store, string? rid = null, bool locked = false)
    {
        var request = new BuildRequest(project) { RequireLockFile = locked };
        if (rid is not null)
        {
            request = request with { Rid = rid };
        }

        return new ReleaseBuilder(new FileBlobStore(_workspace.PathTo(store))).BuildAsync(request, report: null, CancellationToken.None);
    }

    private Dictionary<string, string> BlobFiles(string store)
    {
        var folder = _workspace.PathTo(store, "blobs", "sha256");
        return Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder).ToDictionary(f => Path.GetFileName(f)!, f => f)
            : [];
    }
}
