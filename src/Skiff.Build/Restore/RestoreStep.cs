using Skiff.Build.Processes;

namespace Skiff.Build.Restore;

/// <summary>
/// Makes sure <c>obj/project.assets.json</c> describes the project as it is now, restoring only when it
/// may not: running NuGet's own no-op check costs a process start (about a second), which the fast
/// path cannot afford.
/// </summary>
internal static class RestoreStep
{
    // Files whose change can change what a restore resolves, looked up from the project folder to the root.
    private static readonly string[] ImportedFiles =
    [
        "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props",
        "NuGet.Config", "NuGet.config", "nuget.config", "global.json",
    ];

    public sealed record Outcome(ResolvedClosure Closure, bool Restored, string? Output);

    public static async Task<Outcome> RunAsync(string projectPath, string rid, bool force, CancellationToken cancellationToken)
    {
        if (!force && AssetsFile.TryRead(projectPath, rid) is { } current && IsUpToDate(current))
        {
            return new Outcome(current, Restored: false, Output: null);
        }

        var result = await DotnetCommand.RunAsync(
            ["restore", projectPath, .. MsBuildArguments.ForRid(rid)],
            Path.GetDirectoryName(projectPath)!,
            cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new RestoreFailedException(
                $"restoring the packages of {projectPath} failed; nothing was put into the store. Fix the package references NuGet names below, then build again.",
                BuildOutput.Diagnostics(result.Output));
        }

        var closure = AssetsFile.TryRead(projectPath, rid)
            ?? throw new RestoreFailedException(
                $"restore of {projectPath} succeeded but obj/project.assets.json has no target for {rid}; check that the project does not override its intermediate output path.",
                result.Output);
        return new Outcome(closure, Restored: true, result.Output);
    }

    private static bool IsUpToDate(ResolvedClosure closure)
    {
        var assetsWritten = File.GetLastWriteTimeUtc(AssetsFile.PathFor(closure.ProjectPath));
        return Inputs(closure).All(input => !File.Exists(input) || File.GetLastWriteTimeUtc(input) < assetsWritten);
    }

    private static IEnumerable<string> Inputs(ResolvedClosure closure)
    {
        var projects = closure.ProjectReferences.Prepend(closure.ProjectPath).ToList();
        foreach (var project in projects)
        {
            yield return project;
        }

        var folders = new HashSet<string>(StringComparer.Ordinal);
        foreach (var project in projects)
        {
            for (var folder = Path.GetDirectoryName(project); folder is not null; folder = Path.GetDirectoryName(folder))
            {
                if (!folders.Add(folder))
                {
                    break;
                }

                foreach (var name in ImportedFiles)
                {
                    yield return Path.Combine(folder, name);
                }
            }
        }
    }
}
