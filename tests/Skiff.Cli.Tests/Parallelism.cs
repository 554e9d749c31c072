// These tests mostly wait: on real servers and agents, on grace periods, on processes they started. Two at once (the
// default on two CPUs) left the machine idle in those waits; a third one fills them.
[assembly: CollectionBehavior(MaxParallelThreads = 3)]
[assembly: TestCollectionOrderer("Skiff.Cli.Tests.LongestFirst", "Skiff.Cli.Tests")]

namespace Skiff.Cli.Tests;

/// <summary>
/// Longest first, as measured in CI on two cores (per-test durations of the .trx files, summed per collection):
/// DeployTests ~10 min, ExportImageTests ~7 (podman; pushes to registries), PostgreSQL (ScaleOutTests and
/// PostgresPlatformTests) ~6.5, the launcher's real build ~7 (when the test builds it; scripts/test.sh builds the
/// launcher beside the solution's build, and then the test takes seconds), ReconnectTests ~3, and so on down to ~1 min.
/// In xUnit's own order DeployTests started six minutes in and ran on alone for four minutes after the other slots had
/// run dry.
/// </summary>
internal sealed class LongestFirst() : Skiff.Testing.LongestFirstOrderer(
    "Skiff.Cli.Tests.Platform.DeployTests",
    "Skiff.Cli.Tests.Platform.ExportImageTests",
    "PostgreSQL",
    "Skiff.Cli.Tests.Launcher.LauncherTests",
    "Skiff.Cli.Tests.Platform.ReconnectTests",
    "Skiff.Cli.Tests.Commands.BuildAndExecTests",
    "Skiff.Cli.Tests.Platform.JobOutputTests",
    "Skiff.Cli.Tests.Commands.ExecTests",
    "Skiff.Cli.Tests.Platform.DeployedAppTests",
    "Skiff.Cli.Tests.Platform.ServerRulesTests",
    "Skiff.Cli.Tests.Platform.BlobIntegrityTests",
    "Skiff.Cli.Tests.Platform.ProcessTests",
    "Skiff.Cli.Tests.Platform.RunQueueTests",
    "Skiff.Cli.Tests.Commands.SatelliteTests",
    "Skiff.Cli.Tests.Platform.DeployActionTests");
