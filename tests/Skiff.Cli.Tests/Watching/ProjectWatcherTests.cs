using Skiff.Cli.Watching;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Watching;

public sealed class ProjectWatcherTests
{
    [Theory]
    [InlineData("Program.cs", true)]
    [InlineData("Jobs/Etl.cs", true)]
    [InlineData("Hello.csproj", true)]
    [InlineData("appsettings.json", true)]
    [InlineData("bin/Debug/net10.0/Hello.dll", false)]
    [InlineData("obj/project.assets.json", false)]
    [InlineData("Jobs/obj/x.cs", false)]
    [InlineData(".git/index", false)]
    [InlineData(".vs/state", false)]
    [InlineData(".Program.cs.swp", false)]
    [InlineData("Program.cs~", false)]
    [InlineData("4913", false)]
    [InlineData(".#Program.cs", false)]
    [InlineData("#Program.cs#", false)]
    [InlineData("Program.cs.tmp", false)]
    [InlineData("Program.cs___jb_tmp___", false)]
    public void A_change_to_a_source_file_counts_and_build_output_and_editor_files_do_not(string relative, bool counts)
    {
        var folder = Path.Combine(Path.GetTempPath(), "project");

        ProjectWatcher.IsSourceChange(folder, Path.Combine(folder, relative)).ShouldBe(counts);
    }

    [Fact]
    public async Task Writes_are_reported_as_changes_naming_only_the_source_files()
    {
        using var workspace = new Workspace();
        var folder = workspace.PathTo("project");
        Directory.CreateDirectory(Path.Combine(folder, "obj"));
        using var watcher = new ProjectWatcher(folder, TimeSpan.FromMilliseconds(50), TimeProvider.System);

        await File.WriteAllTextAsync(Path.Combine(folder, "obj", "out.dll"), "build output");
        await File.WriteAllTextAsync(Path.Combine(folder, ".Program.cs.swp"), "vim");
        await File.WriteAllTextAsync(Path.Combine(folder, "Program.cs"), "class A {}");
        await File.WriteAllTextAsync(Path.Combine(folder, "Other.cs"), "class B {}");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        // On a loaded machine the writes may straddle two quiet periods; what counts is what was reported.
        var changed = new HashSet<string>(StringComparer.Ordinal);
        while (!changed.Contains("Program.cs") || !changed.Contains("Other.cs"))
        {
            changed.UnionWith(await watcher.NextAsync(deadline.Token));
        }

        changed.ShouldBe(["Other.cs", "Program.cs"], ignoreOrder: true);
    }

    [Fact]
    public async Task A_project_reference_outside_the_folder_is_watched_once_added_and_its_build_output_is_not()
    {
        using var workspace = new Workspace();
        var folder = workspace.PathTo("app");
        var library = workspace.PathTo("lib");
        Directory.CreateDirectory(folder);
        Directory.CreateDirectory(Path.Combine(library, "obj"));
        using var watcher = new ProjectWatcher(folder, TimeSpan.FromMilliseconds(50), TimeProvider.System);

        watcher.Watch(library);
        watcher.Watch(Path.Combine(library, "Sub"));
        await File.WriteAllTextAsync(Path.Combine(library, "obj", "Lib.dll"), "build output");
        await File.WriteAllTextAsync(Path.Combine(library, "Lib.cs"), "class L {}");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var changed = new HashSet<string>(StringComparer.Ordinal);
        while (!changed.Contains("../lib/Lib.cs"))
        {
            changed.UnionWith(await watcher.NextAsync(deadline.Token));
        }

        changed.ShouldBe(["../lib/Lib.cs"]);
        watcher.Folders.ShouldBe([Path.GetFullPath(folder), Path.GetFullPath(library)], "a folder under one watched is not watched twice");
    }
}
