using Skiff.Core;

namespace Skiff.Agent.Tests.Blobs;

[Collection(AgentCollection.Name)]
public sealed class CacheTests(Releases releases)
{
    [Fact]
    public async Task A_cached_blob_corrupted_on_disk_is_detected_discarded_and_fetched_again()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("one", releases.V1)).Succeeded.ShouldBeTrue();
        var source = releases.V1Build.Source;
        // Damage the cached copy of the source blob, and remove its unpacked folder so it has to be read again.
        var blob = Path.Combine(harness.CacheDirectory, "blobs", "blobs", "sha256", source.Hex);
        File.SetUnixFileMode(blob, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var bytes = await File.ReadAllBytesAsync(blob);
        bytes[bytes.Length / 2] ^= 0x5a;
        await File.WriteAllBytesAsync(blob, bytes);
        Directory.Delete(Path.Combine(harness.CacheDirectory, "releases", "sources", source.Hex), recursive: true);
        var fetchedBefore = harness.Agent.BlobsFetched;

        var result = await harness.ActivateAsync("two", releases.V1);

        result.Succeeded.ShouldBeTrue(result.Error);
        (harness.Agent.BlobsFetched - fetchedBefore).ShouldBe(1);
        Digest.Compute(await File.ReadAllBytesAsync(blob)).ShouldBe(source);
    }

    [Fact]
    public async Task On_start_the_agent_drops_unpacked_folders_that_were_damaged_and_unpacks_them_again()
    {
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("one", releases.V1)).Succeeded.ShouldBeTrue();
        var package = releases.V1Build.Packages.First(p => p.Bytes > 1000).Package.Blob;
        var folder = Path.Combine(harness.CacheDirectory, "releases", "packages", package.Hex);
        var file = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).First();
        await File.AppendAllTextAsync(file, "tampered");

        await harness.RestartAsync(releases);
        var dropped = await harness.Agent.StartAsync(AgentHarness.Timeout());
        var result = await harness.ActivateAsync("one", releases.V1);

        dropped.ShouldBe(1);
        result.Succeeded.ShouldBeTrue(result.Error);
        result.PackagesUnpacked.ShouldBe(1, "only the damaged package is unpacked again");
        File.ReadAllText(file).ShouldNotEndWith("tampered");
    }

    [Fact]
    public async Task Over_its_budget_the_cache_evicts_what_no_live_version_uses()
    {
        await using var harness = new AgentHarness(releases, options => new AgentOptions { CacheDirectory = options.CacheDirectory, CacheBudgetBytes = 1, DrainIdle = options.DrainIdle });
        (await harness.ActivateAsync("analytics", releases.V1)).Succeeded.ShouldBeTrue();
        var v1Source = Path.Combine(harness.CacheDirectory, "releases", "sources", releases.V1Build.Source.Hex);
        Directory.Exists(v1Source).ShouldBeTrue("in use by the live version, so kept even over budget");

        (await harness.ActivateAsync("analytics", releases.V2)).Succeeded.ShouldBeTrue();

        // No longer used once the old version has stopped, which happens after the swap is reported.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (Directory.Exists(v1Source))
        {
            await Task.Delay(20, deadline.Token);
        }

        Directory.Exists(Path.Combine(harness.CacheDirectory, "releases", "sources", releases.V2Build.Source.Hex)).ShouldBeTrue();
        var run = await harness.Agent.StartRunAsync("analytics", "ok", null, null, AgentHarness.Timeout());
        ((string?)(await run.Completion)["type"]).ShouldBe("run_succeeded");
    }
}
