using Skiff.Build.Releases;
using Skiff.Build.Sources;
using Skiff.Core.Blobs;
using Skiff.Testing;

namespace Skiff.Build.Tests.Sources;

/// <summary>
/// When only C# files changed, the compiler runs without MSBuild; the bytes must be those a full MSBuild
/// build gives, and anything beyond C# edits must still go through MSBuild. Real builds of samples/Hello.
/// </summary>
public sealed class DirectCompileTests : IDisposable
{
    private const string Edit = "\nConsole.WriteLine(\"one more line\");\n";

    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task A_CSharp_edit_compiles_without_MSBuild_into_the_bytes_a_fresh_MSBuild_build_gives()
    {
        var project = _workspace.CopySample("Hello", "edited");
        var first = await BuildAsync(project);
        File.AppendAllText(Path.Combine(project, "Program.cs"), Edit);

        var edited = await BuildAsync(project);
        var again = await BuildAsync(project);
        var fresh = _workspace.CopySample("Hello", "fresh/elsewhere");
        File.AppendAllText(Path.Combine(fresh, "Program.cs"), Edit);
        var reference = await BuildAsync(fresh);

        first.Compile.ShouldBe(CompileRoute.MsBuild);
        edited.Compile.ShouldBe(CompileRoute.CompilerOnly);
        edited.Source.ShouldNotBe(first.Source);
        again.Compile.ShouldBe(CompileRoute.UpToDate);
        again.Release.ShouldBe(edited.Release);
        reference.Compile.ShouldBe(CompileRoute.MsBuild);
        edited.Release.ShouldBe(reference.Release);
    }

    [Fact]
    public async Task The_SDKs_compiler_server_takes_the_compile_from_this_process_and_reports_errors()
    {
        var project = _workspace.CopySample("Hello", "served");
        await BuildAsync(project);
        File.AppendAllText(Path.Combine(project, "Program.cs"), Edit);
        (await BuildAsync(project)).Compile.ShouldBe(CompileRoute.CompilerOnly);
        var folder = Directory.GetDirectories(Path.Combine(project, "obj", "skiff")).Single();
        using var record = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "compile.json")));
        var compilerDirectory = Path.GetDirectoryName(record.RootElement.GetProperty("Compiler").GetString())!;
        File.AppendAllText(Path.Combine(project, "Program.cs"), "\nint broken = ;\n");

        var served = await CompilerServerClient.TryCompileAsync(compilerDirectory, Path.Combine(folder, "csc.rsp"), project, CancellationToken.None);

        // Null would mean this SDK's client code changed shape and every direct compile starts a csc process again.
        served.ShouldNotBeNull($"the compiler client in {compilerDirectory} could not be driven from this process");
        served.ExitCode.ShouldNotBe(0);
        served.Output.ShouldContain("error CS1525");
    }

    [Fact]
    public async Task Changes_beyond_the_projects_CSharp_files_go_through_MSBuild_and_take_effect()
    {
        var project = _workspace.CopySample("Hello", "changing");
        var projectFile = Path.Combine(project, "Hello.csproj");
        var extra = Path.Combine(project, "Extra.cs");
        var sdkFile = Directory.EnumerateFiles(Path.Combine(project, "..", "..", "src", "Skiff.Sdk"), "*.cs", SearchOption.AllDirectories).First();
        await BuildAsync(project);

        File.WriteAllText(extra, "internal static class Extra { public const string Text = \"extra\"; }\n");
        var added = await BuildAsync(project);
        File.WriteAllText(projectFile, File.ReadAllText(projectFile).Replace(
            "</Project>", "  <PropertyGroup><DefineConstants>$(DefineConstants);SKIFF_TEST</DefineConstants></PropertyGroup>\n</Project>", StringComparison.Ordinal));
        var projectEdited = await BuildAsync(project);
        File.AppendAllText(sdkFile, "\n// an edit to a project reference\n");
        var referenceEdited = await BuildAsync(project);
        File.Delete(extra);
        var removed = await BuildAsync(project);
        File.AppendAllText(Path.Combine(project, "Program.cs"), Edit);
        var edited = await BuildAsync(project);

        added.Compile.ShouldBe(CompileRoute.MsBuild);
        projectEdited.Compile.ShouldBe(CompileRoute.MsBuild);
        projectEdited.Source.ShouldNotBe(added.Source);
        referenceEdited.Compile.ShouldBe(CompileRoute.MsBuild);
        removed.Compile.ShouldBe(CompileRoute.MsBuild);
        removed.Source.ShouldNotBe(referenceEdited.Source);
        edited.Compile.ShouldBe(CompileRoute.CompilerOnly);
    }

    [Fact]
    public async Task A_compile_error_on_the_direct_path_is_reported_as_MSBuild_would_and_the_next_fix_builds()
    {
        var project = _workspace.CopySample("Hello", "broken");
        var program = Path.Combine(project, "Program.cs");
        var original = File.ReadAllText(program);
        var before = await BuildAsync(project);
        File.AppendAllText(program, "\nthis is not C#;\n");

        var error = await Should.ThrowAsync<CompilationFailedException>(() => BuildAsync(project));
        File.WriteAllText(program, original);
        var fixedAgain = await BuildAsync(project);

        error.Diagnostics.ShouldContain("error CS");
        error.Diagnostics.ShouldContain("Program.cs");
        error.Message.ShouldContain("nothing was put into the store");
        fixedAgain.Compile.ShouldBe(CompileRoute.CompilerOnly);
        fixedAgain.Release.ShouldBe(before.Release);
    }

    private Task<BuildResult> BuildAsync(string project) =>
        new ReleaseBuilder(new FileBlobStore(_workspace.PathTo("store"))).BuildAsync(new BuildRequest(project), report: null, CancellationToken.None);
}
