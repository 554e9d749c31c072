using Skiff.Build.Experiments;
using Skiff.Build.Releases;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Testing;

namespace Skiff.Build.Tests.Experiments;

/// <summary>
/// Experimental packages (docs/build.md, "Experimental dependencies"): real restores and builds of a small project with
/// <c>--exp</c>, the environment left as it is.
/// </summary>
public sealed class ExperimentalRestoreTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task A_package_path_with_msbuild_special_characters_reaches_msbuild_as_it_is()
    {
        // The references to experimental packages' assemblies name files in the NuGet packages folder, which may be anywhere.
        var path = "/srv/nu;get %41 $(HOME) @(Items) it's/*/lib?.dll";
        var project = _workspace.PathTo("escape", "escape.proj");
        Directory.CreateDirectory(Path.GetDirectoryName(project)!);
        await File.WriteAllTextAsync(project, $"<Project><ItemGroup><Reference Include=\"{System.Security.SecurityElement.Escape(ExperimentalRestore.MsBuildEscaped(path))}\" /></ItemGroup><Target Name=\"Build\" /></Project>");

        var evaluated = await CliProcess.RunAsync("dotnet", ["msbuild", project, "-getItem:Reference", "-nologo"], _workspace.Root);

        evaluated.ExitCode.ShouldBe(0, evaluated.ToString());
        var items = System.Text.Json.Nodes.JsonNode.Parse(evaluated.Stdout)!["Items"]!["Reference"]!.AsArray();
        ((string?)items.ShouldHaveSingleItem()!["Identity"]).ShouldBe(path);
    }

    [Fact]
    public async Task The_same_project_and_packages_give_the_same_release_in_two_folders_beside_the_plain_environment()
    {
        const string Program = "System.Console.WriteLine(Humanizer.StringHumanizeExtensions.Humanize(\"experimental_packages_load\"));";
        var first = WriteProject("one", "Newtonsoft.Json", "13.0.3", Program);
        var second = WriteProject("two", "Newtonsoft.Json", "13.0.3", Program);
        var plain = WriteProject("plain", "Newtonsoft.Json", "13.0.3", "System.Console.WriteLine(1);");

        var a = await BuildAsync(first, "Humanizer.Core@2.14.1");
        var b = await BuildAsync(second, "Humanizer.Core@2.14.1");
        var withoutExp = await BuildAsync(plain);

        a.Release.ShouldBe(b.Release);
        a.EnvironmentDigest.ShouldBe(withoutExp.EnvironmentDigest);
        a.Packages.Select(p => p.Package.Id).ShouldBe(["Newtonsoft.Json"]);
        var experimental = a.Manifest.Experimental.ShouldNotBeNull().ShouldHaveSingleItem();
        (experimental.Id, experimental.Version).ShouldBe(("Humanizer.Core", "2.14.1"));
        a.Experimental.Single().Package.ShouldBe(experimental);
        withoutExp.Manifest.Experimental.ShouldBeNull();
        // The package is not copied into the source; the deps file points the host to its blob's folder.
        var deps = await DepsFileOf(a);
        deps.ShouldContain($"\"path\": \"{experimental.Blob.Hex}\"");
        deps.ShouldContain("lib/net6.0/Humanizer.dll");
        (await SourceFilesOf(a)).ShouldNotContain(f => f.EndsWith("Humanizer.dll", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_package_that_needs_a_newer_version_of_an_environment_package_is_refused_naming_both()
    {
        var project = WriteProject("older", "Microsoft.Extensions.Primitives", "8.0.0", "System.Console.WriteLine(1);");

        var refused = await Should.ThrowAsync<ExperimentalPackageException>(() => BuildAsync(project, "Microsoft.Extensions.Options@10.0.0"));

        refused.Message.ShouldContain("Microsoft.Extensions.Primitives: the environment has 8.0.0, the experimental packages need 10.0.0");
        refused.Message.ShouldContain("nothing was put into the store");
        var blobs = _workspace.PathTo("store", "blobs");
        (Directory.Exists(blobs) ? Directory.GetFiles(blobs, "*", SearchOption.AllDirectories) : []).ShouldBeEmpty();
    }

    [Fact]
    public async Task An_analyzer_package_is_refused_as_nothing_a_job_loads()
    {
        var project = WriteProject("analyzer", "Newtonsoft.Json", "13.0.3", "System.Console.WriteLine(1);");

        var refused = await Should.ThrowAsync<ExperimentalPackageException>(() => BuildAsync(project, "xunit.analyzers@1.18.0"));

        refused.Message.ShouldContain("xunit.analyzers@1.18.0 has nothing a job loads");
        refused.Message.ShouldContain("PrivateAssets=\"all\"");
        var blobs = _workspace.PathTo("store", "blobs");
        (Directory.Exists(blobs) ? Directory.GetFiles(blobs, "*", SearchOption.AllDirectories) : []).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("Cronos")]
    [InlineData("Cronos@")]
    [InlineData("Cronos@0.13")]
    [InlineData("Cronos@[0.13.0,)")]
    [InlineData("Cronos@0.13.*")]
    [InlineData("@0.13.0")]
    [InlineData("Cron os@0.13.0")]
    public void A_value_that_is_not_an_id_and_an_exact_version_is_refused_with_the_form_to_use(string value)
    {
        Should.Throw<ExperimentalPackageException>(() => ExperimentalPackage.ParseAll([value]))
            .Message.ShouldContain("write it as Id@Version");
    }

    [Fact]
    public void A_package_named_twice_is_refused_and_good_values_parse()
    {
        ExperimentalPackage.ParseAll(["Cronos@0.13.0", "YamlDotNet@18.0.0-beta.1"])
            .ShouldBe([new ExperimentalPackage("Cronos", "0.13.0"), new ExperimentalPackage("YamlDotNet", "18.0.0-beta.1")]);
        Should.Throw<ExperimentalPackageException>(() => ExperimentalPackage.ParseAll(["Cronos@0.13.0", "cronos@0.11.0"]))
            .Message.ShouldContain("--exp names Cronos 2 times");
    }

    /// <summary>A project named App (its name is the assembly's, so it is the same in every folder) in a folder of its own.</summary>
    private string WriteProject(string folder, string package, string version, string program) =>
        WriteApp(folder, $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <RestorePackagesWithLockFile>true</RestorePackagesWithLockFile>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="{package}" Version="{version}" />
              </ItemGroup>
            </Project>
            """, program);

    private string WriteApp(string folder, string projectXml, string program)
    {
        var path = _workspace.PathTo(folder, "App");
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "App.csproj"), projectXml);
        File.WriteAllText(Path.Combine(path, "Program.cs"), program);
        return path;
    }

    private Task<BuildResult> BuildAsync(string project, params string[] experimental) =>
        new ReleaseBuilder(new FileBlobStore(_workspace.PathTo("store")))
            .BuildAsync(new BuildRequest(project) { Experimental = ExperimentalPackage.ParseAll(experimental) }, null, CancellationToken.None);

    private async Task<string> DepsFileOf(BuildResult build) =>
        File.ReadAllText(Directory.GetFiles(await UnpackAsync(build), "*.deps.json").Single());

    private async Task<string[]> SourceFilesOf(BuildResult build) =>
        Directory.GetFiles(await UnpackAsync(build), "*", SearchOption.AllDirectories);

    private async Task<string> UnpackAsync(BuildResult build)
    {
        var folder = _workspace.PathTo("unpacked", build.Source.Hex);
        if (!Directory.Exists(folder))
        {
            Directory.CreateDirectory(folder);
            await using var blob = await new FileBlobStore(_workspace.PathTo("store")).OpenReadAsync(build.Source, CancellationToken.None);
            await ArchiveReader.ExtractAsync(blob, folder, "source", ArchiveLimits.Default, CancellationToken.None);
        }

        return folder;
    }
}
