using Microsoft.Extensions.Time.Testing;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Server.Blobs;
using Skiff.Server.Tests.Metadata;

namespace Skiff.Server.Tests.Blobs;

/// <summary>The background scrub on a file store, its time driven by a fake clock: the rate bound, and quarantine.</summary>
public sealed class ScrubberTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly string _root = Directory.CreateTempSubdirectory("skiff-scrub-").FullName;
    private readonly TestDatabase _database = new();

    [Fact]
    public async Task A_pass_hashes_at_the_rate_bound_and_quarantines_the_damaged_blob()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-29T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var store = new FileBlobStore(Path.Combine(_root, "store"), time);
        var blobs = new List<Digest>();
        for (var i = 0; i < 3; i++)
        {
            var bytes = new byte[MiB];
            new Random(i).NextBytes(bytes);
            blobs.Add(await store.PutAsync(new MemoryStream(bytes), CancellationToken.None));
        }

        var damaged = blobs[1];
        var path = Path.Combine(_root, "store", "blobs", "sha256", damaged.Hex);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = 1000;
            var b = file.ReadByte();
            file.Position = 1000;
            file.WriteByte((byte)(b ^ 0x01));
        }

        await using var metadata = await _database.OpenAsync();
        var scrubber = new Scrubber(store, metadata, bytesPerSecond: MiB, time);

        var pass = scrubber.ScrubOnceAsync(CancellationToken.None);

        // One MiB at 1 MiB/s: after each blob the pass waits until a second of the clock has passed since it began it.
        await WaitUntilAsync(() => scrubber.LastPass?.Blobs == 1);
        pass.IsCompleted.ShouldBeFalse("the clock has not moved");
        using (var deadline = new CancellationTokenSource(Deadline))
        {
            while (!pass.IsCompleted)
            {
                deadline.IsCancellationRequested.ShouldBeFalse("the pass did not finish");
                time.Advance(TimeSpan.FromMilliseconds(100));
                await Task.Delay(2, CancellationToken.None);
            }
        }

        var finished = await pass.WaitAsync(Deadline);
        (finished.Finished!.Value - finished.Started).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromSeconds(3), "3 MiB at 1 MiB/s");
        finished.Blobs.ShouldBe(3);
        finished.Bytes.ShouldBe(3L * MiB);
        finished.Quarantined.ShouldBe([damaged]);
        finished.Error.ShouldBeNull();
        (await store.ContainsAsync(damaged, CancellationToken.None)).ShouldBeFalse();
        File.Exists(Path.Combine(_root, "store", "quarantine", "sha256", damaged.Hex)).ShouldBeTrue("moved aside, not deleted");
        var report = await scrubber.ReportAsync(CancellationToken.None);
        var only = report.ShouldHaveSingleItem();
        only.Blob.ShouldBe(damaged);
        only.Restored.ShouldBeFalse();
        only.Releases.ShouldBeEmpty("no release in the metadata store uses it");
    }

    [Fact]
    public async Task The_background_scrub_waits_after_a_start_then_runs_a_pass_and_is_off_at_rate_zero()
    {
        var time = new FakeTimeProvider();
        var store = new FileBlobStore(Path.Combine(_root, "store"), time);
        await store.PutAsync(new MemoryStream(new byte[100]), CancellationToken.None);
        await using var metadata = await _database.OpenAsync();
        using var scrubber = new Scrubber(store, metadata, Scrubber.DefaultBytesPerSecond, time);
        using var off = new Scrubber(store, metadata, 0, time);

        var started = time.GetUtcNow();
        await scrubber.StartAsync(CancellationToken.None);
        await off.StartAsync(CancellationToken.None);
        scrubber.LastPass.ShouldBeNull("nothing is hashed right after a start");
        using (var deadline = new CancellationTokenSource(Deadline))
        {
            while (scrubber.LastPass is not { Finished: not null })
            {
                deadline.IsCancellationRequested.ShouldBeFalse("no pass finished");
                time.Advance(TimeSpan.FromSeconds(10));
                await Task.Delay(2, CancellationToken.None);
            }
        }

        (scrubber.LastPass.Started - started).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMinutes(5), "the first pass waits five minutes after a start");

        scrubber.LastPass!.Blobs.ShouldBe(1);
        off.LastPass.ShouldBeNull();
        off.ExecuteTask!.IsCompleted.ShouldBeTrue("rate 0 is off");
        await scrubber.StopAsync(CancellationToken.None);
    }

    public void Dispose()
    {
        _database.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (!condition())
        {
            deadline.IsCancellationRequested.ShouldBeFalse("the condition did not come true in time");
            await Task.Delay(5, CancellationToken.None);
        }
    }
}
