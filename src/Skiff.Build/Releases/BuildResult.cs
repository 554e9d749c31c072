using Skiff.Build.Sources;
using Skiff.Core;
using Skiff.Core.Manifests;

namespace Skiff.Build.Releases;

/// <summary>A release that is now in the store, with what it took to make it.</summary>
internal sealed record BuildResult(
    Digest Release,
    ReleaseManifest Manifest,
    EnvironmentManifest Environment,
    Digest EnvironmentDigest,
    long EnvironmentBytes,
    IReadOnlyList<(PackageEntry Package, long Bytes)> Packages,
    Digest Source,
    long SourceBytes,
    BuildTimings Timings,
    CompileRoute Compile)
{
    /// <summary>The project files of the project's project references, full paths: their folders are sources too.</summary>
    public IReadOnlyList<string> ProjectReferences { get; init; } = [];

    /// <summary>The release's experimental packages (outside its environment), each with its blob's size; empty for none.</summary>
    public IReadOnlyList<(PackageEntry Package, long Bytes)> Experimental { get; init; } = [];
}

/// <summary>Wall-clock time per stage. Environment packing overlaps the build, so the stages do not add up to the total.</summary>
internal sealed record BuildTimings(TimeSpan Restore, TimeSpan Environment, TimeSpan Build, TimeSpan Pack, TimeSpan Total);

/// <summary>One line of progress: a stage finished, what it did, how long it took.</summary>
internal sealed record StageReport(string Stage, string Summary, TimeSpan Elapsed);
