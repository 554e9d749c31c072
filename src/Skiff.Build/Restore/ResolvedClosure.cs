using Skiff.Build.Projects;

namespace Skiff.Build.Restore;

/// <summary>What <c>obj/project.assets.json</c> says about one project for one framework and runtime identifier.</summary>
internal sealed record ResolvedClosure(
    string ProjectPath,
    string Framework,
    string Rid,
    IReadOnlyList<string> FrameworkReferences,
    IReadOnlyList<ResolvedPackage> Packages,
    IReadOnlyList<string> ProjectReferences)
{
    /// <summary>Whether the packages are exactly what the project's packages.lock.json says.</summary>
    public bool Locked { get; init; }

    /// <summary>The variant the restore was for.</summary>
    public ProjectVariant Variant { get; init; } = ProjectVariant.Undeclared;

    /// <summary>
    /// Packages the project uses only to build (analyzers, build-time packages, test tools): reached only through
    /// references with <c>PrivateAssets="all"</c>. Left out of <see cref="Packages"/>, as `dotnet publish` leaves them out.
    /// </summary>
    public IReadOnlyList<ResolvedPackage> DevelopmentOnly { get; init; } = [];

    /// <summary>The experimental packages this build compiles against besides the closure (<c>skiff deploy --exp</c>); null for none.</summary>
    public Experiments.ExperimentalBuild? Experiment { get; init; }

    /// <summary>
    /// The folder under <c>obj/skiff/RID/</c> with this build's output and compile record: one per variant, and one per
    /// set of experimental packages within it, whose compiler arguments (references) differ.
    /// </summary>
    public string BuildFolderName => Experiment is null ? Variant.FolderName : Path.Combine(Variant.FolderName, "exp", Experiment.Key);
}
