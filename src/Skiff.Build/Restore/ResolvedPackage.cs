using Skiff.Core.Archives;

namespace Skiff.Build.Restore;

/// <summary>
/// One package of the restored closure, with the runtime assets the restore chose for the target
/// framework and runtime identifier, as files in the NuGet packages folder.
/// </summary>
internal sealed record ResolvedPackage(string Id, string Version, string Sha512, IReadOnlyList<ArchiveFile> Assets)
{
    /// <summary>What the host's deps file says of each asset: its path in the package blob, and its group there.</summary>
    public IReadOnlyList<DepsAsset> DepsAssets { get; init; } = [];

    /// <summary>The full paths of the assemblies code compiles against (the restore's <c>compile</c> assets).</summary>
    public IReadOnlyList<string> CompileAssets { get; init; } = [];
}

/// <summary>An asset as a deps file lists it: <c>runtime</c>, <c>native</c> or <c>resources</c> (with its culture).</summary>
internal sealed record DepsAsset(string PathInBlob, string Group, string? Locale);
