[assembly: TestCollectionOrderer("Skiff.Build.Tests.LongestFirst", "Skiff.Build.Tests")]

namespace Skiff.Build.Tests;

/// <summary>
/// Two at a time (the default on two CPUs), longest first, as measured in CI: ReleaseBuilderTests ~6 min,
/// DirectCompileTests ~4, RestoreAndRefusalTests ~4, GitContextTests ~2; the rest take seconds. When
/// ReleaseBuilderTests held all of these but the compile and git tests, it ran on alone for four minutes.
/// </summary>
internal sealed class LongestFirst() : Skiff.Testing.LongestFirstOrderer(
    "Skiff.Build.Tests.Releases.ReleaseBuilderTests",
    "Skiff.Build.Tests.Sources.DirectCompileTests",
    "Skiff.Build.Tests.Releases.RestoreAndRefusalTests",
    "Skiff.Build.Tests.Releases.GitContextTests");
