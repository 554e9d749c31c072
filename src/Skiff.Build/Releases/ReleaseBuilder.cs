using Skiff.Build.Environments;
using Skiff.Build.Experiments;
using Skiff.Build.Projects;
using Skiff.Build.Restore;
using Skiff.Build.Sources;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;

namespace Skiff.Build.Releases;

/// <summary>
/// Turns a project into a release in the store: restore, environment (one blob per package), build,
/// source blob, manifests. Nothing reaches the store unless every step succeeded.
/// </summary>
internal sealed class ReleaseBuilder(FileBlobStore store, PackageBlobIndex index, TimeProvider time)
{
    public ReleaseBuilder(FileBlobStore store)
        : this(store, new PackageBlobIndex(Path.Combine(store.Root, "index", "packages")), TimeProvider.System)
    {
    }

    public async Task<BuildResult> BuildAsync(BuildRequest request, Action<StageReport>? report, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var projectPath = ProjectLocator.Locate(request.Path);
        // Before the lock and the restore, so a mistyped name costs nothing.
        var variant = ProjectVariants.Resolve(projectPath, request.Variant);
        if (request.Experimental.Count > 0 && request.RequireLockFile)
        {
            throw new ExperimentalPackageException(
                $"--exp {string.Join(", ", request.Experimental)} and --locked do not go together: --locked deploys exactly what the project's lock file says, and experimental packages are outside it. Deploy without --locked to try them, or add them to the project.");
        }

        using var exclusive = await ProjectBuildLock.AcquireAsync(
            projectPath,
            holder => report?.Invoke(new StageReport("wait", $"another build of {Path.GetFileName(projectPath)} is running{(holder is null ? "" : $" ({holder})")}; waiting for it to finish", time.GetElapsedTime(started))),
            cancellationToken).ConfigureAwait(false);

        var stage = time.GetTimestamp();
        var restore = await RestoreStep.RunAsync(projectPath, request.Rid, variant, request.ForceRestore, request.RequireLockFile, cancellationToken).ConfigureAwait(false);
        var closure = restore.Closure;
        // Every build holds the variants to one version per package, as far as their lock files tell; `skiff check`
        // restores every variant to tell the rest.
        VariantCompatibility.Check(projectPath, [(variant.Name, VariantCompatibility.Versions(closure)), .. VariantCompatibility.LockedOthers(closure)]);
        var restoreTime = time.GetElapsedTime(stage);
        report?.Invoke(new StageReport(
            "restore",
            (restore.Restored ? $"restored {closure.Packages.Count} packages for {closure.Framework}/{closure.Rid}" : $"up to date ({closure.Packages.Count} packages, {closure.Framework}/{closure.Rid})")
                + (variant.Declared ? $", variant {variant.Name}" : "")
                + (restore.LockFileUpdated ? $", {variant.LockFileName} updated" : closure.Locked ? ", locked" : "")
                + (closure.DevelopmentOnly.Count > 0 ? $", {closure.DevelopmentOnly.Count} build-only left out" : ""),
            restoreTime));

        var packer = new EnvironmentPacker(store, index);
        var environmentTask = TimedAsync(() => packer.PrepareAsync(closure, variant.Name, cancellationToken));
        IReadOnlyList<ResolvedPackage> experimentalPackages = [];
        Task<PreparedPackage[]> experimentalTask = Task.FromResult(Array.Empty<PreparedPackage>());
        var experimentalTime = TimeSpan.Zero;
        stage = time.GetTimestamp();
        SourceBuildResult built;
        try
        {
            if (request.Experimental.Count > 0)
            {
                // Apart from the project's restore: the environment above is the project's own, digest and blobs.
                var experiment = await ExperimentalRestore.RunAsync(closure, request.Experimental, cancellationToken).ConfigureAwait(false);
                experimentalPackages = experiment.Extra;
                experimentalTask = packer.PreparePackagesAsync(experiment.Extra, closure.Rid, cancellationToken);
                report?.Invoke(new StageReport(
                    "experimental",
                    $"{(experiment.Restored ? "restored" : "up to date:")} {experiment.Extra.Count} package(s) besides the environment ({string.Join(", ", experiment.Extra.Select(p => $"{p.Id} {p.Version}"))})",
                    time.GetElapsedTime(stage)));
                closure = closure with { Experiment = experiment.Build };
                // A restore, while the environment packs: counted as one, not as the build's.
                experimentalTime = time.GetElapsedTime(stage);
                stage = time.GetTimestamp();
            }

            built = await SourceBuild.RunAsync(closure, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await DiscardAsync(environmentTask).ConfigureAwait(false);
            await DiscardAsync(experimentalTask).ConfigureAwait(false);
            throw;
        }

        var buildTime = time.GetElapsedTime(stage);
        var output = built.Output;
        report?.Invoke(new StageReport(
            "build",
            built.Route switch
            {
                CompileRoute.CompilerOnly => $"compiled {Path.GetFileName(projectPath)} (only C# files changed: compiler server, no MSBuild)",
                CompileRoute.UpToDate => $"{Path.GetFileName(projectPath)} is up to date",
                _ => $"compiled {Path.GetFileName(projectPath)} with MSBuild",
            },
            buildTime));

        var (environment, environmentTime) = await environmentTask.ConfigureAwait(false);
        PreparedPackage[] experimental;
        try
        {
            experimental = await experimentalTask.ConfigureAwait(false);
        }
        catch
        {
            EnvironmentPacker.Discard(environment);
            throw;
        }

        report?.Invoke(new StageReport(
            "environment",
            $"{environment.Digest.Short} from {environment.Packages.Count} packages ({environment.PackedCount} packed, {environment.Packages.Count - environment.PackedCount} already in the store, {Format.Bytes(environment.Bytes)})",
            environmentTime));

        stage = time.GetTimestamp();
        PreparedSource source;
        try
        {
            source = await SourcePacker.PackAsync(
                output,
                projectPath,
                environment.Manifest,
                store,
                closure.DevelopmentOnly.Select(p => $"{p.Id}/{p.Version}").ToHashSet(StringComparer.OrdinalIgnoreCase),
                [.. experimental.Select((p, i) => (p.Entry, experimentalPackages[i].DepsAssets))],
                cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            EnvironmentPacker.Discard(environment);
            EnvironmentPacker.Discard(experimental);
            throw;
        }

        var manifest = ReleaseManifest.Create(
            environment.Digest, source.Digest, source.EntryAssembly, source.SdkVersion ?? SdkVersion(environment.Manifest), experimental.Select(p => p.Entry));
        var manifestBytes = manifest.ToBytes();
        var release = Digest.Compute(manifestBytes);

        // The release manifest goes in last: a release in the store implies everything it names is there.
        await packer.CommitAsync(environment, cancellationToken).ConfigureAwait(false);
        await packer.CommitPackagesAsync(experimental, cancellationToken).ConfigureAwait(false);
        var storedSource = await store.ImportFileAsync(source.StagedFile, cancellationToken).ConfigureAwait(false);
        if (storedSource != source.Digest)
        {
            throw BlobIntegrityException.ForPut(source.Digest, storedSource, store.Root);
        }

        if (!await store.ContainsAsync(release, cancellationToken).ConfigureAwait(false))
        {
            await store.PutAsync(release, new MemoryStream(manifestBytes, writable: false), cancellationToken).ConfigureAwait(false);
        }
        var packTime = time.GetElapsedTime(stage);
        report?.Invoke(new StageReport("pack", $"source {source.Digest.Short} ({source.FileCount} files, {Format.Bytes(source.Bytes)}); release {release.Short}", packTime));

        return new BuildResult(
            release,
            manifest,
            environment.Manifest,
            environment.Digest,
            environment.Bytes,
            [.. environment.Packages.Select(p => (p.Entry, p.Bytes))],
            source.Digest,
            source.Bytes,
            new BuildTimings(restoreTime + experimentalTime, environmentTime, buildTime, packTime, time.GetElapsedTime(started)),
            built.Route)
        {
            ProjectReferences = closure.ProjectReferences,
            Experimental = [.. experimental.Select(p => (p.Entry, p.Bytes))],
        };
    }

    /// <summary>
    /// Restores every variant of the project and checks them against each other: what `skiff check` does. Nothing
    /// is built or put into the store. Returns each variant's closure, the declared default first.
    /// </summary>
    /// <exception cref="VariantConflictException">Two variants resolve a package to different versions.</exception>
    public static async Task<IReadOnlyList<ResolvedClosure>> CheckVariantsAsync(BuildRequest request, CancellationToken cancellationToken)
    {
        var projectPath = ProjectLocator.Locate(request.Path);
        using var exclusive = await ProjectBuildLock.AcquireAsync(projectPath, waiting: null, cancellationToken).ConfigureAwait(false);
        var closures = new List<ResolvedClosure>();
        foreach (var variant in ProjectVariants.All(projectPath))
        {
            var restore = await RestoreStep.RunAsync(projectPath, request.Rid, variant, request.ForceRestore, request.RequireLockFile, cancellationToken).ConfigureAwait(false);
            closures.Add(restore.Closure);
        }

        VariantCompatibility.Check(projectPath, [.. closures.Select(c => (c.Variant.Name, VariantCompatibility.Versions(c)))]);
        return closures;
    }

    private async Task<(T Value, TimeSpan Elapsed)> TimedAsync<T>(Func<Task<T>> action)
    {
        var started = time.GetTimestamp();
        var value = await action().ConfigureAwait(false);
        return (value, time.GetElapsedTime(started));
    }

    private static async Task DiscardAsync(Task<PreparedPackage[]> packagesTask)
    {
        try
        {
            EnvironmentPacker.Discard(await packagesTask.ConfigureAwait(false));
        }
        catch (Exception) when (packagesTask.IsFaulted || packagesTask.IsCanceled)
        {
            // The build's own failure is the one to report.
        }
    }

    private static async Task DiscardAsync(Task<(PreparedEnvironment Value, TimeSpan Elapsed)> environmentTask)
    {
        try
        {
            EnvironmentPacker.Discard((await environmentTask.ConfigureAwait(false)).Value);
        }
        catch (Exception) when (environmentTask.IsFaulted || environmentTask.IsCanceled)
        {
            // The build's own failure is the one to report.
        }
    }

    /// <summary>The Skiff.Sdk version the release was built against, when it references the SDK as a package.</summary>
    private static string? SdkVersion(EnvironmentManifest environment) =>
        environment.Packages.FirstOrDefault(p => string.Equals(p.Id, "Skiff.Sdk", StringComparison.OrdinalIgnoreCase))?.Version;
}
