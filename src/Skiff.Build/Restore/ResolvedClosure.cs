namespace Skiff.Build.Restore;

/// <summary>What <c>obj/project.assets.json</c> says about one project for one framework and runtime identifier.</summary>
internal sealed record ResolvedClosure(
    string ProjectPath,
    string Framework,
    string Rid,
    IReadOnlyList<string> FrameworkReferences,
    IReadOnlyList<ResolvedPackage> Packages,
    IReadOnlyList<string> ProjectReferences);
