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

    public sealed record Outcome(ResolvedClosure Closure, bool Restored, string? Output)
    {
        /// <summary>NuGet wrote a new packages.lock.json because the project's package references changed.</summary>
        public bool LockFileUpdated { get; init; }
    }

    public static async Task<Outcome> RunAsync(string projectPath, string rid, bool force, bool requireLockFile, CancellationToken cancellationToken)
    {
        var lockFile = PackagesLockFile.TryRead(projectPath);
        if (lockFile is null && requireLockFile)
        {
            throw new LockFileException(
                $"{projectPath} has no {PackagesLockFile.FileName}, and --locked deploys only projects whose packages are locked. Add <RestorePackagesWithLockFile>true</RestorePackagesWithLockFile> to the project, run `dotnet restore`, and commit {PackagesLockFile.FileName}.");
        }

        if (!force && AssetsFile.TryRead(projectPath, rid) is { } current && IsUpToDate(current))
        {
            return new Outcome(Checked(current, lockFile), Restored: false, Output: null);
        }

        var lockBefore = lockFile is null ? null : File.ReadAllBytes(lockFile.Path);
        var result = lockFile is null
            ? await RestoreAsync(projectPath, [.. MsBuildArguments.ForRid(rid)], cancellationToken).ConfigureAwait(false)
            : await RestoreLockedAsync(projectPath, rid, lockFile.Covers(rid), requireLockFile, cancellationToken).ConfigureAwait(false);
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
        MarkCurrent(closure);
        // NuGet rewrites the lock file when the project's package references changed (unless in locked mode).
        var lockAfter = lockFile is null ? null : PackagesLockFile.TryRead(projectPath);
        var updated = lockBefore is not null && (lockAfter is null || !File.ReadAllBytes(lockAfter.Path).AsSpan().SequenceEqual(lockBefore));
        return new Outcome(Checked(closure, lockAfter), Restored: true, result.Output) { LockFileUpdated = updated };
    }

    /// <summary>
    /// Restores a project that has a lock file as `dotnet restore` would: the locked versions, and a new lock
    /// file when the project's package references changed, unless in locked mode (<c>--locked</c>, or the
    /// project's own <c>RestoreLockedMode</c>, typically set for CI), where that is refused.
    /// NuGet uses a lock file only for the runtime identifiers it was written for. When it covers
    /// <paramref name="rid"/> (the project lists it in <c>RuntimeIdentifiers</c>), NuGet pins the RID-specific
    /// closure itself. Otherwise NuGet first checks the lock file with a portable restore, then the
    /// RID-specific restore writes a private lock file under obj/ instead of changing the project's, and
    /// <see cref="Checked"/> compares what it resolved with the project's lock file. A restore refused because
    /// the lock file is out of date is repeated the second way, so the error can name the packages that would move.
    /// </summary>
    private static async Task<DotnetCommand.Result> RestoreLockedAsync(string projectPath, string rid, bool lockCoversRid, bool lockedMode, CancellationToken cancellationToken)
    {
        string[] mode = lockedMode ? ["-p:RestoreLockedMode=true"] : [];
        // RuntimeIdentifier, not `-r`: `dotnet restore -r` replaces the project's RuntimeIdentifiers, and the
        // lock file's set of runtime identifiers would no longer match.
        var first = await RestoreAsync(
            projectPath,
            lockCoversRid ? [$"-p:RuntimeIdentifier={rid}", .. MsBuildArguments.BesidesRid, .. mode] : [.. MsBuildArguments.BesidesRid, .. mode],
            cancellationToken).ConfigureAwait(false);
        var outOfDate = !first.Succeeded && first.Output.Contains("NU1004", StringComparison.Ordinal);
        if ((lockCoversRid || !first.Succeeded) && !outOfDate)
        {
            return first;
        }

        var privateLockFile = Path.Combine("obj", "skiff", rid, PackagesLockFile.FileName);
        // Resolved afresh each time, so what is compared is what the registry gives today.
        var stale = Path.Combine(Path.GetDirectoryName(projectPath)!, privateLockFile);
        if (File.Exists(stale))
        {
            File.Delete(stale);
        }

        return await RestoreAsync(
            projectPath,
            [.. MsBuildArguments.ForRid(rid), "-p:RestoreLockedMode=false", $"-p:NuGetLockFilePath={privateLockFile}"],
            cancellationToken).ConfigureAwait(false);
    }

    private static Task<DotnetCommand.Result> RestoreAsync(string projectPath, IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        DotnetCommand.RunAsync(["restore", projectPath, .. arguments], Path.GetDirectoryName(projectPath)!, cancellationToken);

    /// <summary>The closure, marked locked when the project has a lock file and the closure is exactly what it says.</summary>
    private static ResolvedClosure Checked(ResolvedClosure closure, PackagesLockFile? lockFile)
    {
        if (lockFile is null)
        {
            return closure;
        }

        var differences = lockFile.Differences(closure);
        if (differences.Count > 0)
        {
            throw new LockFileException(
                $"{closure.ProjectPath} restores other packages than {lockFile.Path} locks for {closure.Framework}/{closure.Rid}; nothing was put into the store:"
                + string.Concat(differences.Select(d => $"{Environment.NewLine}  {d}"))
                + $"{Environment.NewLine}If the project's package references changed on purpose, run `dotnet restore --force-evaluate` and commit the lock file."
                + (lockFile.Covers(closure.Rid) ? "" : $" To have NuGet pin the {closure.Rid} closure too, add <RuntimeIdentifiers>{closure.Rid}</RuntimeIdentifiers> to the project before that."));
        }

        return closure with { Locked = true };
    }

    /// <summary>
    /// Makes the assets file at least as new as every input of the check in <see cref="IsUpToDate"/>. NuGet
    /// writes packages.lock.json after project.assets.json, and a no-op restore rewrites neither: without
    /// this, a project whose lock file was just written would look stale, and be restored (about 1.5 s), on
    /// every later build.
    /// </summary>
    private static void MarkCurrent(ResolvedClosure closure)
    {
        var assets = AssetsFile.PathFor(closure.ProjectPath);
        var newest = Inputs(closure).Where(File.Exists).Select(File.GetLastWriteTimeUtc).DefaultIfEmpty(DateTime.MinValue).Max();
        if (newest >= File.GetLastWriteTimeUtc(assets))
        {
            File.SetLastWriteTimeUtc(assets, newest.AddMilliseconds(1));
        }
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
            yield return PackagesLockFile.PathFor(project);
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
