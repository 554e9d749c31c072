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
}
