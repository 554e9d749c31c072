using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Skiff.Agent.Locations;
using Skiff.Core.Archives;
using Skiff.Core.Manifests;

namespace Skiff.Agent.Tests.Locations;

/// <summary>
/// Code that runs is code that was deployed: an unpacked file edited in place in the agent's cache (as a job on an
/// agent without a sandbox could) is found before the next process starts from it, and unpacked again from its blob.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class CodeIntegrityTests(Releases releases) : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("skiff-integrity-").FullName;

    [Fact]
    public async Task A_dll_edited_in_the_cache_is_unpacked_again_before_a_new_location_a_run_or_a_restart_runs_it()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("existing", releases.V1)).Succeeded.ShouldBeTrue();
        var manifest = await ManifestLoader.LoadReleaseAsync(releases.Store, releases.V1, AgentHarness.Timeout());
        var source = Path.Combine(harness.CacheDirectory, "releases", "sources", manifest.Source.Hex);
        var dll = Path.Combine(source, manifest.EntryAssembly);
        var original = await File.ReadAllBytesAsync(dll);
        var other = await V2EntryAsync();
        other.ShouldNotBe(original);

        // Unpacked folders are the agent's: no other user may write them, even without a sandbox's read-only binds.
        foreach (var entry in Directory.EnumerateFileSystemEntries(source, "*", SearchOption.AllDirectories).Append(source))
        {
            (File.GetUnixFileMode(entry) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)).ShouldBe((UnixFileMode)0, entry);
        }

        // A new location of the same release.
        await EditInPlaceAsync(dll, other);
        var activated = await harness.ActivateAsync("new", releases.V1);

        activated.Succeeded.ShouldBeTrue(activated.Error);
        (await harness.WaitForReportAsync("new", AgentReportKind.Repaired)).Message.ShouldContain($"source folder {manifest.Source.Short} had changed on disk");
        (await File.ReadAllBytesAsync(dll)).ShouldBe(original);
        (await VariantAsync(harness, "new")).ShouldBe("variant v1");

        // A run of a location that was live before the edit starts a process of its own.
        await EditInPlaceAsync(dll, other);
        (await VariantAsync(harness, "existing")).ShouldBe("variant v1");
        (await harness.WaitForReportAsync("existing", AgentReportKind.Repaired)).Release.ShouldBe(releases.V1);

        // The restart of that location's code server after a crash.
        await EditInPlaceAsync(dll, other);
        var pid = harness.Agent.Describe("existing")!.CodeServerProcessId;
        using (var kill = Process.Start("kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(AgentHarness.Timeout());
        }

        await harness.WaitForReportAsync("existing", AgentReportKind.Repaired);
        await harness.WaitForReportAsync("existing", AgentReportKind.Restarted);
        (await File.ReadAllBytesAsync(dll)).ShouldBe(original, "repaired before the restart, with no run since");
        harness.Agent.Describe("existing")!.Release.ShouldBe(releases.V1);
    }

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    /// <summary>Rewrites a file's bytes through its own inode, as an attacker without rights to the folder would.</summary>
    private static async Task EditInPlaceAsync(string path, byte[] content)
    {
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.SetLength(0);
        await file.WriteAsync(content);
    }

    /// <summary>The entry assembly of the other version of the test app: real code that says it is v2.</summary>
    private async Task<byte[]> V2EntryAsync()
    {
        var manifest = await ManifestLoader.LoadReleaseAsync(releases.Store, releases.V2, AgentHarness.Timeout());
        await using (var blob = await releases.Store.OpenReadAsync(manifest.Source, AgentHarness.Timeout()))
        {
            await ArchiveReader.ExtractAsync(blob, _scratch, "v2 source", ArchiveLimits.Default, AgentHarness.Timeout());
        }

        return await File.ReadAllBytesAsync(Path.Combine(_scratch, manifest.EntryAssembly));
    }

    private static async Task<string> VariantAsync(AgentHarness harness, string location)
    {
        var run = await harness.Agent.StartRunAsync(location, "whoami", new JsonObject(), null, AgentHarness.Timeout());
        var events = await AgentHarness.CollectAsync(run);
        ((string?)events.Last()["type"]).ShouldBe("run_succeeded");
        return events.Where(e => (string?)e["type"] == "log").Select(e => (string)e["message"]!).First(m => m.StartsWith("variant ", StringComparison.Ordinal));
    }
}
