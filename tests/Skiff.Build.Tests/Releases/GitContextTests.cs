using Skiff.Build.Releases;
using Skiff.Core.Blobs;
using Skiff.Testing;

namespace Skiff.Build.Tests.Releases;

/// <summary>
/// Git is not an input of a release: the same project files give the same release id in a work tree, in a
/// fork with another remote, after the remote changed, and outside git. Real builds of samples/Hello.
/// </summary>
public sealed class GitContextTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Same_files_give_the_same_release_in_or_out_of_git_and_whatever_the_remote()
    {
        var inRepository = _workspace.CopySample("Hello", "repository/Hello");
        var inFork = _workspace.CopySample("Hello", "fork/Hello");
        await GitRepository.InitAsync(_workspace.PathTo("repository"), "https://github.com/skiff-tests/hello.git");
        await GitRepository.InitAsync(_workspace.PathTo("fork"), "https://github.com/someone-else/hello-fork.git");

        // Outside git: the shared build, in a temporary folder.
        var plain = (await BuiltHello.GetAsync()).Result;
        var repository = await BuildAsync(inRepository);
        var fork = await BuildAsync(inFork);
        await GitRepository.RunAsync(_workspace.PathTo("repository"), "remote", "set-url", "origin", "https://github.com/skiff-tests/moved.git");
        var moved = await BuildAsync(inRepository);

        repository.Source.ShouldBe(plain.Source, "a git work tree changed the source digest");
        fork.Source.ShouldBe(plain.Source, "another remote changed the source digest");
        moved.Source.ShouldBe(plain.Source);
        foreach (var release in new[] { repository, fork, moved })
        {
            release.Release.ShouldBe(plain.Release);
        }
    }

    private Task<BuildResult> BuildAsync(string project) =>
        new ReleaseBuilder(new FileBlobStore(_workspace.PathTo("store"))).BuildAsync(new BuildRequest(project), report: null, CancellationToken.None);
}
