using System.Runtime.InteropServices;

namespace Skiff.Build.Releases;

/// <summary>What to build: a project (folder or project file) for a runtime identifier.</summary>
internal sealed record BuildRequest(string Path)
{
    /// <summary>The runtime identifier the environment is resolved for; this machine's by default.</summary>
    public string Rid { get; init; } = RuntimeInformation.RuntimeIdentifier;

    /// <summary>
    /// Which of the project's variants (<c>&lt;SkiffVariants&gt;</c>) to build; null for its default (the first it
    /// declares, or <c>default</c> for a project that declares none).
    /// </summary>
    public string? Variant { get; init; }

    /// <summary>Restore even when the restore output looks current.</summary>
    public bool ForceRestore { get; init; }

    /// <summary>Refuse a project without a packages.lock.json (a project with one is always restored locked).</summary>
    public bool RequireLockFile { get; init; }

    /// <summary>
    /// Packages deployed with this release only, besides its environment (<c>skiff deploy --exp</c>, docs/build.md
    /// "Experimental dependencies"); empty for none.
    /// </summary>
    public IReadOnlyList<Experiments.ExperimentalPackage> Experimental { get; init; } = [];
}
