using Skiff.Build.Processes;
using Skiff.Build.Projects;

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

    public static Task<Outcome> RunAsync(string projectPath, string rid, bool force, bool requireLockFile, CancellationToken cancellationToken) =>
        RunAsync(projectPath, rid, ProjectVariant.Undeclared, force, requireLockFile, cancellationToken);

    /// <summary>
    /// Restores <paramref name="variant"/>. Every variant restores into the project's one <c>obj/</c> (a variant's
    /// own <c>BaseIntermediateOutputPath</c> would put the others' generated files into its compile items), so
    /// which variant <c>obj/project.assets.json</c> holds is written beside it, and switching variants restores.
    /// </summary>
    public static async Task<Outcome> RunAsync(string projectPath, string rid, ProjectVariant variant, bool force, bool requireLockFile, CancellationToken cancellationToken)
    {
        var lockFile = PackagesLockFile.TryRead(projectPath, variant);
        if (lockFile is null && requireLockFile)
        {
            throw new LockFileException(
                $"{projectPath} has no {variant.LockFileName}{(variant.Declared ? $" for its variant '{variant.Name}'" : "")}, and --locked deploys only projects whose packages are locked. Add <RestorePackagesWithLockFile>true</RestorePackagesWithLockFile> to the project, run `dotnet restore`{(variant.IsDefault ? "" : $" -p:SkiffVariant={variant.Name} -p:NuGetLockFilePath={variant.LockFileName}")}, and commit {variant.LockFileName}.");
        }

        if (!force && RestoredVariant(projectPath) == variant.Name && AssetsFile.TryRead(projectPath, rid) is { } current && IsUpToDate(current, variant))
        {
            return new Outcome(Checked(current with { Variant = variant }, lockFile), Restored: false, Output: null);
        }

        var lockBefore = lockFile is null ? null : File.ReadAllBytes(lockFile.Path);
        var result = lockFile is null
            ? await RestoreAsync(projectPath, [.. MsBuildArguments.ForRid(rid), .. variant.MsBuildArguments], cancellationToken).ConfigureAwait(false)
            : await RestoreLockedAsync(projectPath, rid, variant, lockFile.Covers(rid), requireLockFile, cancellationToken).ConfigureAwait(false);
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
        closure = closure with { Variant = variant };
        File.WriteAllText(RestoredVariantPath(projectPath), variant.Name);
        MarkCurrent(closure);
        // NuGet rewrites the lock file when the project's package references changed (unless in locked mode), and
        // writes the first one of a project with RestorePackagesWithLockFile (a new variant's too): the closure is
        // locked from this build on, not from the next, so the environment digest does not move between the two.
        var lockAfter = PackagesLockFile.TryRead(projectPath, variant);
        var updated = lockBefore is null
            ? lockAfter is not null
            : lockAfter is null || !File.ReadAllBytes(lockAfter.Path).AsSpan().SequenceEqual(lockBefore);
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
    private static async Task<DotnetCommand.Result> RestoreLockedAsync(string projectPath, string rid, ProjectVariant variant, bool lockCoversRid, bool lockedMode, CancellationToken cancellationToken)
    {
        string[] mode = [.. variant.MsBuildArguments, .. lockedMode ? ["-p:RestoreLockedMode=true"] : Array.Empty<string>()];
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

        var privateLockFile = Path.Combine("obj", "skiff", rid, variant.FolderName, PackagesLockFile.FileName);
        // Resolved afresh each time, so what is compared is what the registry gives today.
        var stale = Path.Combine(Path.GetDirectoryName(projectPath)!, privateLockFile);
        if (File.Exists(stale))
        {
            File.Delete(stale);
        }

        return await RestoreAsync(
            projectPath,
            [.. MsBuildArguments.ForRid(rid), .. variant.MsBuildArguments, "-p:RestoreLockedMode=false", $"-p:NuGetLockFilePath={privateLockFile}"],
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

    private static bool IsUpToDate(ResolvedClosure closure, ProjectVariant variant)
    {
        var assetsWritten = File.GetLastWriteTimeUtc(AssetsFile.PathFor(closure.ProjectPath));
        return Inputs(closure with { Variant = variant }).All(input => !File.Exists(input) || File.GetLastWriteTimeUtc(input) < assetsWritten);
    }

    /// <summary>
    /// The variant whose restore <c>obj/project.assets.json</c> holds. A project without variants that was never
    /// restored by Skiff (an IDE's restore) holds the undeclared default.
    /// </summary>
    private static string RestoredVariant(string projectPath) =>
        File.Exists(RestoredVariantPath(projectPath)) ? File.ReadAllText(RestoredVariantPath(projectPath)) : ProjectVariant.Undeclared.Name;

    private static string RestoredVariantPath(string projectPath)
    {
        var folder = Path.Combine(Path.GetDirectoryName(projectPath)!, "obj", "skiff");
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, "restored-variant");
    }

    private static IEnumerable<string> Inputs(ResolvedClosure closure)
    {
        var projects = closure.ProjectReferences.Prepend(closure.ProjectPath).ToList();
        foreach (var project in projects)
        {
            yield return project;
            // Global properties reach project references too, NuGetLockFilePath among them.
            yield return PackagesLockFile.PathFor(project, closure.Variant);
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
