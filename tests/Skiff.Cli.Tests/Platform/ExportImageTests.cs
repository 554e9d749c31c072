using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// `skiff export --oci` with a real container client: the image of a deployed release is the same bytes from any
/// folder, podman loads it, and a job run in it prints what `skiff run` prints for the same job on the platform. The base
/// is built locally by scripts/oci-base.sh (debootstrap from this machine's apt sources, cached under .tools/oci-base).
/// </summary>
public sealed partial class ExportImageTests(PlatformFixture fixture) : IClassFixture<PlatformFixture>
{
    // Against a hang, not a measure: a cold base (apt-get install podman, debootstrap) took about 3 minutes here.
    private static readonly TimeSpan BaseDeadline = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan PodmanDeadline = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task The_image_of_a_release_is_the_same_from_two_folders_and_podman_runs_its_job_as_skiff_run_does()
    {
        var baseArchive = await BaseArchiveAsync();

        var deployed = await fixture.Platform.SkiffAsync("deploy", fixture.Hello, "--location", "exported", "--json");
        deployed.ExitCode.ShouldBe(0, deployed.ToString());
        var release = (string)JsonNode.Parse(deployed.Stdout)!["release"]!;

        // Two working folders, two ways to name the release (a location's live one, a prefix as `skiff history` shows).
        var first = fixture.Workspace.PathTo("export-a");
        var second = fixture.Workspace.PathTo("export-b", "deeper");
        Directory.CreateDirectory(first);
        Directory.CreateDirectory(second);
        var exportedFirst = await ExportAsync(first, "exported@current", baseArchive);
        var exportedSecond = await ExportAsync(second, release[7..19], baseArchive);
        exportedFirst.ExitCode.ShouldBe(0, exportedFirst.ToString());
        exportedSecond.ExitCode.ShouldBe(0, exportedSecond.ToString());
        var image = JsonNode.Parse(exportedFirst.Stdout)!;
        ((string?)JsonNode.Parse(exportedSecond.Stdout)!["image"]).ShouldBe((string?)image["image"]);
        (await File.ReadAllBytesAsync(Path.Combine(second, "image.tar"))).ShouldBe(await File.ReadAllBytesAsync(Path.Combine(first, "image.tar")));
        ((string?)image["release"]).ShouldBe(release);
        image["layers"]!.AsArray().Select(l => (string?)l!["kind"]).ShouldBe(["base", .. Enumerable.Repeat("environment", image["layers"]!.AsArray().Count - 2), "source"]);

        var podman = new Podman(fixture.Workspace.PathTo("podman"));
        try
        {
            var loaded = await podman.RunAsync("load", "-i", Path.Combine(first, "image.tar"));
            loaded.ExitCode.ShouldBe(0, loaded.ToString());
            var name = $"localhost/skiff-release:{release[7..19]}";
            var digest = await podman.RunAsync("image", "inspect", "--format", "{{.Digest}}", name);
            digest.Stdout.Trim().ShouldBe((string?)image["image"], digest.ToString());

            await RunsAsOnThePlatformAsync(podman, name, "exported", "oci");
        }
        finally
        {
            await podman.RemoveAsync();
        }
    }

    /// <summary>The base image scripts/oci-base.sh builds (once; later calls only print its path).</summary>
    private static async Task<string> BaseArchiveAsync()
    {
        var built = await CliProcess.RunAsync("bash", [Path.Combine(Workspace.RepositoryRoot, "scripts", "oci-base.sh"), "build"], Workspace.RepositoryRoot, deadline: BaseDeadline);
        built.ExitCode.ShouldBe(0, built.ToString());
        return built.Stdout.Trim().Split('\n')[^1];
    }

    private Task<CliProcess.Result> ExportAsync(string workingDirectory, string release, string baseArchive) =>
        CliProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "export", release, "--oci", "image.tar", "--base", baseArchive, "--json"],
            workingDirectory,
            fixture.Platform.Home,
            new Dictionary<string, string> { ["SKIFF_URL"] = fixture.Platform.Url.ToString(), ["SKIFF_TOKEN"] = fixture.Platform.Token },
            PodmanDeadline);

    /// <summary>What a run's events say, without what differs between two runs of it (ids, times, durations).</summary>
    private static List<string> Lines(string jsonLines) =>
    [
        .. jsonLines.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonNode.Parse(line)!)
            .Select(e => $"{(string?)e["type"]}|{(string?)e["op"]}|{(string?)e["level"]}|{(string?)e["message"]}|{(string?)e["stream"]}|{(string?)e["text"]}"),
    ];

    /// <summary>
    /// podman with a private storage root, and the settings bench/container/common.sh found to work on this kind of host:
    /// cgroupfs and file events (no systemd, no journald), runc (crun refuses the hybrid cgroup layout), and the
    /// sandbox's own nofile and nproc limits.
    /// </summary>
    private sealed class Podman(string root)
    {
        public Task<CliProcess.Result> RunAsync(params string[] arguments)
        {
            Directory.CreateDirectory(root);
            string[] global = ["--root", Path.Combine(root, "storage"), "--runroot", Path.Combine(root, "run"), "--storage-driver", "overlay",
                "--cgroup-manager=cgroupfs", "--events-backend=file", "--runtime", "runc"];
            string[] limits = arguments[0] == "run" ? ["--ulimit", "nofile=20000:20000", "--ulimit", $"nproc={ProcessLimit()}:{ProcessLimit()}"] : [];
            return CliProcess.RunAsync("podman", [.. global, arguments[0], .. limits, .. arguments[1..]], root, deadline: PodmanDeadline);
        }

        /// <summary>
        /// Drops every container and image of the private root, then the root itself. Not `podman system reset`: that also
        /// deletes the host's network definitions, which are not this test's.
        /// </summary>
        public async Task RemoveAsync()
        {
            if (Directory.Exists(root))
            {
                var containers = await RunAsync("rm", "--all", "--force");
                var images = await RunAsync("rmi", "--all", "--force");
                containers.ExitCode.ShouldBe(0, containers.ToString());
                images.ExitCode.ShouldBe(0, images.ToString());
                Directory.Delete(root, recursive: true);
            }
        }

        /// <summary>min(hard RLIMIT_NPROC, kernel.pid_max): rootful podman asks for more otherwise, which needs CAP_SYS_RESOURCE.</summary>
        private static long ProcessLimit()
        {
            var pidMax = long.Parse(File.ReadAllText("/proc/sys/kernel/pid_max").Trim(), System.Globalization.CultureInfo.InvariantCulture);
            var hard = File.ReadLines("/proc/self/limits").First(l => l.StartsWith("Max processes", StringComparison.Ordinal))
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[3];
            return hard == "unlimited" ? pidMax : Math.Min(long.Parse(hard, System.Globalization.CultureInfo.InvariantCulture), pidMax);
        }
    }
}
