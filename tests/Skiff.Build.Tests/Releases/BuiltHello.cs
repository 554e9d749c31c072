using Skiff.Build.Releases;
using Skiff.Core.Blobs;
using Skiff.Testing;

namespace Skiff.Build.Tests.Releases;

/// <summary>
/// samples/Hello built once for the whole test run, unchanged, as the first (locked) build of a fresh copy into a store
/// of its own. Tests that compare with a build of the unchanged sample, or build it a second time, take this one
/// instead of restoring and compiling a copy of their own (each is a real restore and a compile of Hello and of the
/// Skiff.Sdk it references). Never edit its folder; a build of it into its own store finds everything done.
/// </summary>
internal static class BuiltHello
{
    private static readonly Lazy<Task<Build>> Shared = new(BuildAsync);

    public static Task<Build> GetAsync() => Shared.Value;

    private static async Task<Build> BuildAsync()
    {
        var workspace = new Workspace();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => workspace.Dispose();
        var project = workspace.CopySample("Hello", "shared/Hello");
        var store = workspace.PathTo("store");
        var stages = new List<StageReport>();
        var result = await new ReleaseBuilder(new FileBlobStore(store))
            .BuildAsync(new BuildRequest(project) { RequireLockFile = true }, stages.Add, CancellationToken.None);
        return new Build(project, store, result, stages);
    }

    /// <param name="Project">The project's folder.</param>
    /// <param name="Store">The blob store it was built into.</param>
    /// <param name="Result">What the first build gave.</param>
    /// <param name="Stages">What the first build reported, in order.</param>
    internal sealed record Build(string Project, string Store, BuildResult Result, IReadOnlyList<StageReport> Stages);
}
