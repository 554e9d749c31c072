using Skiff.Build.Projects;
using Skiff.Build.Releases;
using Skiff.Build.Restore;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Testing;

namespace Skiff.Build.Tests.Releases;

/// <summary>
/// Environment variants (docs/build.md, "Variants"): real `dotnet` restores and builds of a small project whose
/// <c>ml</c> variant adds a package, with build-only packages that no variant may ship.
/// </summary>
public sealed class VariantTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Two_variants_share_every_common_package_blob_and_building_one_never_moves_the_other()
    {
        var project = VariantProject.Write(_workspace, "Shared", mlNewtonsoft: "13.0.3");

        var baseline = await BuildAsync(project, variant: null);
        var ml = await BuildAsync(project, "ml");
        File.AppendAllText(Path.Combine(project, "Program.cs"), "\nSystem.Console.WriteLine(2);\n");
        var mlAgain = await BuildAsync(project, "ml");
        var baseAgain = await BuildAsync(project, "base");

        baseline.Environment.Variant.ShouldBe("base");
        ml.Environment.Variant.ShouldBe("ml");
        ml.EnvironmentDigest.ShouldNotBe(baseline.EnvironmentDigest);
        var baseBlobs = baseline.Packages.ToDictionary(p => p.Package.Id, p => p.Package.Blob);
        var mlBlobs = ml.Packages.ToDictionary(p => p.Package.Id, p => p.Package.Blob);
        baseBlobs.Keys.ShouldBe(["Newtonsoft.Json"]);
        mlBlobs.Keys.ShouldBe(["Humanizer.Core", "Newtonsoft.Json"], ignoreOrder: true);
        mlBlobs["Newtonsoft.Json"].ShouldBe(baseBlobs["Newtonsoft.Json"]);
        // A code change in ml leaves its environment alone, and building ml never moved base's.
        mlAgain.EnvironmentDigest.ShouldBe(ml.EnvironmentDigest);
        mlAgain.Source.ShouldNotBe(ml.Source);
        baseAgain.EnvironmentDigest.ShouldBe(baseline.EnvironmentDigest);
        File.Exists(Path.Combine(project, "packages.lock.json")).ShouldBeTrue();
        File.Exists(Path.Combine(project, "packages.ml.lock.json")).ShouldBeTrue();

        // Build-only packages (PrivateAssets="all": an analyzer, a test library) reach no environment and no deps file.
        foreach (var build in (BuildResult[])[baseline, ml])
        {
            build.Packages.ShouldNotContain(p => p.Package.Id.StartsWith("xunit", StringComparison.OrdinalIgnoreCase));
            var deps = await DepsFileOf(build);
            deps.ShouldNotContain("xunit");
            deps.ShouldContain("Newtonsoft.Json");
        }
    }

    [Fact]
    public async Task A_package_two_variants_resolve_to_different_versions_is_refused_with_both()
    {
        var project = VariantProject.Write(_workspace, "Conflict", mlNewtonsoft: "13.0.1");

        var checkError = await Should.ThrowAsync<VariantConflictException>(
            () => ReleaseBuilder.CheckVariantsAsync(new BuildRequest(project), CancellationToken.None));
        // Every build checks too, from the variants' lock files the check's restores wrote.
        var buildError = await Should.ThrowAsync<VariantConflictException>(() => BuildAsync(project, variant: null));

        foreach (var error in (VariantConflictException[])[checkError, buildError])
        {
            error.Message.ShouldContain("Newtonsoft.Json: 13.0.3 in base and dev, 13.0.1 in ml");
            error.Conflicts.Count.ShouldBe(1);
        }

        BlobFiles().ShouldBeEmpty();
    }

    [Fact]
    public async Task An_unknown_variant_is_refused_with_the_declared_ones_before_anything_runs()
    {
        var project = VariantProject.Write(_workspace, "Unknown", mlNewtonsoft: "13.0.3");
        var plain = _workspace.WriteProject(
            "Plain",
            """<Project Sdk="Microsoft.NET.Sdk"><PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework></PropertyGroup></Project>""",
            "System.Console.WriteLine(1);");

        var error = await Should.ThrowAsync<UnknownVariantException>(() => BuildAsync(project, "gpu"));
        var undeclared = await Should.ThrowAsync<UnknownVariantException>(() => BuildAsync(plain, "gpu"));

        error.Message.ShouldContain("declares no variant 'gpu'; it declares base, ml, dev");
        undeclared.Message.ShouldContain("declares no variants");
        Directory.Exists(Path.Combine(project, "obj")).ShouldBeFalse();
        ProjectVariants.Resolve(Path.Combine(plain, "Plain.csproj"), null).Name.ShouldBe("default");
    }

    private Task<BuildResult> BuildAsync(string project, string? variant) =>
        new ReleaseBuilder(new FileBlobStore(_workspace.PathTo("store")))
            .BuildAsync(new BuildRequest(project) { Variant = variant }, null, CancellationToken.None);

    private async Task<string> DepsFileOf(BuildResult build)
    {
        var store = new FileBlobStore(_workspace.PathTo("store"));
        var folder = _workspace.PathTo("unpacked", build.Source.Hex);
        Directory.CreateDirectory(folder);
        await using (var blob = await store.OpenReadAsync(build.Source, CancellationToken.None))
        {
            await ArchiveReader.ExtractAsync(blob, folder, "source", ArchiveLimits.Default, CancellationToken.None);
        }

        return File.ReadAllText(Directory.GetFiles(folder, "*.deps.json").Single());
    }

    private string[] BlobFiles()
    {
        var blobs = _workspace.PathTo("store", "blobs");
        return Directory.Exists(blobs) ? Directory.GetFiles(blobs, "*", SearchOption.AllDirectories) : [];
    }
}
