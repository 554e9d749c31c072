using Skiff.Build.Releases;
using Skiff.Core.Blobs;
using Skiff.Testing;

namespace Skiff.Build.Tests.Releases;

/// <summary>
/// Real `dotnet` restores and builds of samples/Hello, copied into temporary folders; the unchanged sample to compare
/// with is <see cref="BuiltHello"/>, built once for every class.
/// </summary>
public sealed class ReleaseBuilderTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Same_project_in_two_directories_gives_identical_digests_and_blob_bytes()
    {
        var shared = await BuiltHello.GetAsync();
        var second = _workspace.CopySample("Hello", "two/deeper/path/Hello");

        var a = shared.Result;
        var b = await BuildAsync(second, "store-b");

        b.Release.ShouldBe(a.Release);
        b.EnvironmentDigest.ShouldBe(a.EnvironmentDigest);
        b.Source.ShouldBe(a.Source);
        a.Packages.Count.ShouldBeGreaterThanOrEqualTo(3);
        a.Manifest.SdkVersion.ShouldNotBeNull();
        var blobsA = BlobFiles(shared.Store);
        var blobsB = BlobFiles("store-b");
        blobsB.Keys.ShouldBe(blobsA.Keys, ignoreOrder: true);
        foreach (var (name, path) in blobsA)
        {
            File.ReadAllBytes(blobsB[name]).ShouldBe(File.ReadAllBytes(path), $"blob {name}");
        }
    }

    [Fact]
    public async Task Source_change_changes_the_source_digest_and_nothing_else()
    {
        var project = _workspace.CopySample("Hello");
        var before = await BuildAsync(project, "store");

        var program = Path.Combine(project, "Program.cs");
        File.AppendAllText(program, "\nConsole.WriteLine(\"one more line\");\n");
        var after = await BuildAsync(project, "store");

        after.Source.ShouldNotBe(before.Source);
        after.EnvironmentDigest.ShouldBe(before.EnvironmentDigest);
        after.Packages.Select(p => p.Package.Blob).ShouldBe(before.Packages.Select(p => p.Package.Blob));
        after.Release.ShouldNotBe(before.Release);
    }

    [Fact]
    public async Task Package_bump_changes_the_environment_and_only_that_package_blob()
    {
        var project = _workspace.CopySample("Hello");
        var before = await BuildAsync(project, "store");

        var projectFile = Path.Combine(project, "Hello.csproj");
        File.WriteAllText(projectFile, File.ReadAllText(projectFile).Replace(
            "\"Newtonsoft.Json\" Version=\"13.0.3\"", "\"Newtonsoft.Json\" Version=\"13.0.1\"", StringComparison.Ordinal));
        // As a developer bumping a package does: the lock file follows the project (CI restores in locked mode).
        await LockedPackages.UpdateAsync(project);
        var after = await BuildAsync(project, "store");

        after.EnvironmentDigest.ShouldNotBe(before.EnvironmentDigest);
        var beforeBlobs = before.Packages.ToDictionary(p => p.Package.Id, p => p.Package.Blob);
        var afterBlobs = after.Packages.ToDictionary(p => p.Package.Id, p => p.Package.Blob);
        afterBlobs.Keys.ShouldBe(beforeBlobs.Keys, ignoreOrder: true);
        var changed = afterBlobs.Where(p => beforeBlobs[p.Key] != p.Value).Select(p => p.Key).ToList();
        changed.ShouldBe(["Newtonsoft.Json"]);
        after.Packages.Single(p => p.Package.Id == "Newtonsoft.Json").Package.Version.ShouldBe("13.0.1");
    }

    [Fact]
    public async Task Reordered_package_references_and_reformatted_project_file_change_nothing()
    {
        var reordered = _workspace.CopySample("Hello", "reordered/Hello");
        File.WriteAllText(Path.Combine(reordered, "Hello.csproj"), """
            <Project Sdk="Microsoft.NET.Sdk">


                <ItemGroup>
                    <PackageReference Include="Newtonsoft.Json"     Version="13.0.3" />
                    <PackageReference   Include="Microsoft.Data.Sqlite" Version="10.0.11" />
                    <PackageReference Include="Humanizer.Core" Version="2.14.1"></PackageReference>
                </ItemGroup>
                <PropertyGroup>
                    <RuntimeIdentifiers>linux-x64</RuntimeIdentifiers>
                    <RestoreLockedMode Condition="'$(CI)' == 'true'">true</RestoreLockedMode>
                    <RestorePackagesWithLockFile>true</RestorePackagesWithLockFile>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <TargetFramework>net10.0</TargetFramework>
                    <OutputType>Exe</OutputType>
                </PropertyGroup>
                <ItemGroup>
                        <ProjectReference Include="../../src/Skiff.Sdk/Skiff.Sdk.csproj" />
                </ItemGroup>
            </Project>
            """);

        var a = (await BuiltHello.GetAsync()).Result;
        var b = await BuildAsync(reordered, "store-b");

        b.EnvironmentDigest.ShouldBe(a.EnvironmentDigest);
        b.Source.ShouldBe(a.Source);
        b.Release.ShouldBe(a.Release);
    }

    [Fact]
    public async Task Another_runtime_identifier_gives_another_environment()
    {
        // The linux-x64 build is the shared one; win-x64 in a copy of its own, as its restore rewrites obj/.
        var linux = (await BuiltHello.GetAsync()).Result;
        var project = _workspace.CopySample("Hello");
        var windows = await BuildAsync(project, "store", rid: "win-x64");

        windows.Environment.Rid.ShouldBe("win-x64");
        windows.EnvironmentDigest.ShouldNotBe(linux.EnvironmentDigest);
        // The lock file covers linux-x64 only: win-x64 was resolved apart from it and checked against it.
        windows.Environment.Locked.ShouldBeTrue();
        windows.Packages.Select(p => p.Package.Id).ShouldBe(LockedPackages.Read(project).Keys, ignoreOrder: true);
        // The native SQLite package (the one the lock file lists per RID) differs; managed-only packages are the same blob.
        var native = LockedPackages.SpecificTo(project, "linux-x64").ShouldHaveSingleItem();
        var linuxBlobs = linux.Packages.ToDictionary(p => p.Package.Id, p => p.Package.Blob);
        windows.Packages.Single(p => p.Package.Id == native).Package.Blob.ShouldNotBe(linuxBlobs[native]);
        windows.Packages.Single(p => p.Package.Id == "Humanizer.Core").Package.Blob.ShouldBe(linuxBlobs["Humanizer.Core"]);
    }

    [Fact]
    public async Task Unchanged_project_reuses_every_package_blob_and_gives_the_same_release()
    {
        var shared = await BuiltHello.GetAsync();
        var stages = new List<StageReport>();
        var first = shared.Result;
        var second = await new ReleaseBuilder(new FileBlobStore(shared.Store))
            .BuildAsync(new BuildRequest(shared.Project), stages.Add, CancellationToken.None);

        second.Release.ShouldBe(first.Release);
        stages.Single(s => s.Stage == "restore").Summary.ShouldStartWith("up to date");
        stages.Single(s => s.Stage == "environment").Summary.ShouldContain("(0 packed, ");
        second.Packages.Select(p => p.Package.Blob).ShouldBe(first.Packages.Select(p => p.Package.Blob));
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
        // A store of this test's workspace by name, or another (the shared build's) by its absolute path.
        var folder = Path.Combine(_workspace.PathTo(store), "blobs", "sha256");
        return Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder).ToDictionary(f => Path.GetFileName(f)!, f => f)
            : [];
    }
}
