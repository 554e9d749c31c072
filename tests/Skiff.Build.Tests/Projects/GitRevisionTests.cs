using Skiff.Build.Projects;
using Skiff.Testing;

namespace Skiff.Build.Tests.Projects;

/// <summary>Reading the commit and dirty flag a deployment records, from real git repositories.</summary>
public sealed class GitRevisionTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task A_clean_work_tree_gives_HEAD_and_a_change_or_a_new_file_makes_it_dirty()
    {
        var repository = _workspace.PathTo("repository");
        var project = Path.Combine(repository, "App");
        Directory.CreateDirectory(project);
        File.WriteAllText(Path.Combine(project, "App.csproj"), "<Project />\n");
        File.WriteAllText(Path.Combine(repository, ".gitignore"), "obj/\n");
        await GitRepository.InitAsync(repository, "https://github.com/skiff-tests/app.git");
        var head = (await GitRepository.RunAsync(repository, "rev-parse", "HEAD")).Trim();

        var clean = await GitRevision.ReadAsync(Path.Combine(project, "App.csproj"), CancellationToken.None);
        Directory.CreateDirectory(Path.Combine(project, "obj"));
        File.WriteAllText(Path.Combine(project, "obj", "ignored.txt"), "build output\n");
        var ignoredOnly = await GitRevision.ReadAsync(project, CancellationToken.None);
        File.WriteAllText(Path.Combine(project, "Extra.cs"), "// not committed\n");
        var untracked = await GitRevision.ReadAsync(project, CancellationToken.None);
        File.Delete(Path.Combine(project, "Extra.cs"));
        File.AppendAllText(Path.Combine(project, "App.csproj"), "<!-- edited -->\n");
        var modified = await GitRevision.ReadAsync(project, CancellationToken.None);

        clean.ShouldBe(new GitRevision(head, Dirty: false));
        ignoredOnly.ShouldBe(new GitRevision(head, Dirty: false));
        untracked.ShouldBe(new GitRevision(head, Dirty: true));
        modified.ShouldBe(new GitRevision(head, Dirty: true));
    }

    [Fact]
    public async Task Outside_git_or_before_the_first_commit_there_is_nothing_to_record()
    {
        var outside = Directory.CreateDirectory(_workspace.PathTo("outside")).FullName;
        var empty = Directory.CreateDirectory(_workspace.PathTo("empty")).FullName;
        await GitRepository.RunAsync(empty, "init", "--quiet");

        (await GitRevision.ReadAsync(outside, CancellationToken.None)).ShouldBeNull();
        (await GitRevision.ReadAsync(empty, CancellationToken.None)).ShouldBeNull();
    }
}
