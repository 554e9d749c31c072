// These tests mostly wait: on real servers and agents, on grace periods, on processes they started. Two at once (the
// default on two CPUs) left the machine idle in those waits; a third one fills them.
[assembly: CollectionBehavior(MaxParallelThreads = 3)]
[assembly: TestCollectionOrderer("Skiff.Cli.Tests.LongestFirst", "Skiff.Cli.Tests")]

namespace Skiff.Cli.Tests;

/// <summary>
/// Longest first, as measured in CI on two cores (a collection's time from the .trx files: its first test's start to its
/// last test's end, plus the gap its fixture left before it): DeployTests ~10.5 min, PostgreSQL (ScaleOutTests and
/// PostgresPlatformTests) ~7.3, ExportImageTests ~5 (podman; pushes to registries), the launcher's real build ~7 (when
/// the test builds it; scripts/test.sh builds the launcher beside the solution's build, and then the test takes
/// seconds), RabbitMQ ~2 with its broker, then the ones of ~1.3 down to ~0.65 min; shorter ones follow in name order.
/// In xUnit's own order DeployTests started six minutes in and ran on alone for four minutes after the other slots had
/// run dry. Later, WebUiTests (~1 min with its fixture's two builds and chromium), the 1,000-task flows and the task
/// classes (~1 min each), unnamed, started in the last seven minutes in name order and WebUiTests ended on its own.
/// </summary>
internal sealed class LongestFirst() : Skiff.Testing.LongestFirstOrderer(
    "Skiff.Cli.Tests.Platform.DeployTests",
    "Skiff.Cli.Tests.Platform.ExportImageTests",
    "PostgreSQL",
    "Skiff.Cli.Tests.Launcher.LauncherTests",
    "RabbitMQ",
    "Skiff.Cli.Tests.Platform.EmbeddedTaskFlowTests",
    "Skiff.Cli.Tests.Platform.ReconnectTests",
    "Skiff.Cli.Tests.Commands.BuildAndExecTests",
    "Skiff.Cli.Tests.Platform.AgentDrainTests",
    "Skiff.Cli.Tests.Platform.TaskCallTests",
    "Skiff.Cli.Tests.Ui.WebUiTests",
    "Skiff.Cli.Tests.Platform.DeployedAppTests",
    "Skiff.Cli.Tests.Platform.JobOutputTests",
    "Skiff.Cli.Tests.Platform.PoolScalingTests",
    "Skiff.Cli.Tests.Platform.DevTests",
    "Skiff.Cli.Tests.Packages.OutsideRepositoryTests",
    "Skiff.Cli.Tests.Platform.EnvCommandTests",
    "Skiff.Cli.Tests.Commands.ExecTests",
    "Skiff.Cli.Tests.Platform.ProcessTests",
    "Skiff.Cli.Tests.Platform.ServerRulesTests",
    "Skiff.Cli.Tests.Platform.SharedRunsTests",
    "Skiff.Cli.Tests.Platform.BlobIntegrityTests",
    "Skiff.Cli.Tests.Platform.RunQueueTests");
