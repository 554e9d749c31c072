using Skiff.Build.Projects;
using Skiff.Core;

namespace Skiff.Build.Restore;

/// <summary>
/// The rule that keeps a project's variants one code base: every package two variants share resolves to the
/// same version in both, so code that works in <c>base</c> works in <c>ml</c> and one test run covers both.
/// </summary>
internal static class VariantCompatibility
{
    /// <summary>
    /// Checks the closures of several variants against each other.
    /// </summary>
    /// <param name="projectPath">The project, for the error.</param>
    /// <param name="closures">Each variant's package versions (id → version), by variant name.</param>
    /// <exception cref="VariantConflictException">A package resolves to different versions; every such package is named.</exception>
    public static void Check(string projectPath, IReadOnlyList<(string Variant, IReadOnlyDictionary<string, string> Versions)> closures)
    {
        var conflicts = closures
            .SelectMany(c => c.Versions.Select(p => (c.Variant, Id: p.Key, Version: p.Value)))
            .GroupBy(p => p.Id, StringComparer.OrdinalIgnoreCase)
            .Where(g => g.Select(p => p.Version).Distinct(StringComparer.OrdinalIgnoreCase).Count() > 1)
            .OrderBy(g => g.Key, StringComparer.OrdinalIgnoreCase)
            .Select(g => $"{g.Key}: " + string.Join(", ", g.GroupBy(p => p.Version, StringComparer.OrdinalIgnoreCase)
                .Select(v => $"{v.Key} in {string.Join(" and ", v.Select(p => p.Variant))}")))
            .ToList();
        if (conflicts.Count > 0)
        {
            throw new VariantConflictException(
                $"the variants of {projectPath} disagree on {conflicts.Count} package{(conflicts.Count == 1 ? "" : "s")}; every package two variants share must resolve to one version in both, and nothing was put into the store:"
                + string.Concat(conflicts.Select(c => $"{Environment.NewLine}  {c}"))
                + $"{Environment.NewLine}Reference the same version in every variant (a PackageReference outside the variant conditions, or a <PackageVersion> in Directory.Packages.props), then restore each variant again.",
                conflicts);
        }
    }

    /// <summary>
    /// The closure of each variant other than <paramref name="built"/> as far as it is known without a restore:
    /// from its lock file. A variant without one is not checked on a build; `skiff check` restores it.
    /// </summary>
    public static IEnumerable<(string Variant, IReadOnlyDictionary<string, string> Versions)> LockedOthers(ResolvedClosure built)
    {
        foreach (var variant in ProjectVariants.All(built.ProjectPath).Where(v => v.Name != built.Variant.Name))
        {
            if (PackagesLockFile.TryRead(built.ProjectPath, variant) is { } lockFile)
            {
                yield return (variant.Name, lockFile.Versions(built.Framework, built.Rid));
            }
        }
    }

    /// <summary>Every package of a restored closure with its version, development-only ones too: the rule covers them as well.</summary>
    public static IReadOnlyDictionary<string, string> Versions(ResolvedClosure closure) =>
        closure.Packages.Concat(closure.DevelopmentOnly).ToDictionary(p => p.Id, p => p.Version, StringComparer.OrdinalIgnoreCase);
}

/// <summary>Two variants of a project resolve a package they share to different versions. Nothing was put into the store.</summary>
internal sealed class VariantConflictException(string message, IReadOnlyList<string> conflicts) : SkiffException(message)
{
    /// <summary>One line per package: its id and each version with the variants that resolve to it.</summary>
    public IReadOnlyList<string> Conflicts { get; } = conflicts;
}
