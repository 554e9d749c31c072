using System.Text.Json.Nodes;
using Amazon.S3.Model;
using Skiff.Core;
using Skiff.Core.Manifests;
using Skiff.Server.Blobs;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// A damaged blob on the server, in a folder and in S3 (s3rver): a deployment that needs it fails and names it, the
/// scrub finds it, both quarantine it and say which releases and locations it affects, and the next `skiff deploy`
/// uploads it again, after which an agent with an empty cache brings the location back.
/// </summary>
public sealed class BlobIntegrityTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Theory]
    [InlineData("files")]
    [InlineData("s3")]
    public async Task A_damaged_blob_fails_the_deploy_is_scrubbed_into_quarantine_and_the_next_deploy_recovers_the_location(string store)
    {
        S3Server? s3 = null;
        string? bucket = null;
        if (store == "s3")
        {
            s3 = await S3Server.Shared;
            bucket = await s3.CreateBucketAsync();
        }

        var options = s3 is null ? null : S3BlobStoreOptions.Parse($"s3://{bucket}/platform?endpoint={s3.Endpoint}", name => S3Server.Credentials.GetValueOrDefault(name));
        await using var platform = await EmbeddedPlatform.StartAsync(_workspace.PathTo("platform"), s3Blobs: options);
        var hello = PlatformFixture.SharedHello;
        var first = await platform.SkiffAsync("deploy", hello, "--location", "a");
        first.ExitCode.ShouldBe(0, first.ToString());
        var release = (await platform.Server.Store.GetLocationAsync("a", CancellationToken.None))!.LiveRelease!.Value;
        var manifest = await ManifestLoader.LoadReleaseAsync(platform.Server.Blobs, release, CancellationToken.None);
        var package = (await ManifestLoader.LoadEnvironmentAsync(platform.Server.Blobs, manifest.Environment, CancellationToken.None)).Packages[0].Blob;

        await FlipAByteAsync(platform, s3, bucket, package);
        if (s3 is null)
        {
            // A deploy by a server that has not hashed the blob since it was damaged (this one restarted): refused,
            // naming it. (The check is the same on S3, whose VerifyAsync the store contract covers; a deploy costs time.)
            await platform.StopServerAsync();
            await platform.StartServerAsync();
            var refused = await platform.SkiffAsync("deploy", hello, "--location", "a");

            refused.ExitCode.ShouldBe(1, refused.ToString());
            refused.Stderr.ShouldContain($"no longer match their digest ({package})");
            refused.Stderr.ShouldContain("Deploy again");
            (await platform.Server.Blobs.ContainsAsync(package, CancellationToken.None)).ShouldBeFalse("quarantined: missing from now on");
        }

        // The scrub, driven here at full speed, finds the source damaged too (and on S3 the package).
        await FlipAByteAsync(platform, s3, bucket, manifest.Source);
        var scrubber = new Scrubber(platform.Server.Blobs, platform.Server.Store, 0, TimeProvider.System);
        var pass = await scrubber.ScrubOnceAsync(CancellationToken.None);

        pass.Error.ShouldBeNull();
        pass.Quarantined.Order().ShouldBe(s3 is null ? [manifest.Source] : new[] { package, manifest.Source }.Order());
        var report = await ScrubReportAsync(platform);
        report.Select(q => (string)q!["digest"]!).Order().ShouldBe(new[] { package.ToString(), manifest.Source.ToString() }.Order());
        foreach (var blob in report)
        {
            ((bool)blob!["restored"]!).ShouldBeFalse();
            blob["releases"]!.AsArray().Select(r => (string)r!).ShouldBe([release.ToString()]);
            blob["locations"]!.AsArray().Select(l => (string)l!).ShouldBe(["a"]);
        }

        // What an operator reads: `skiff scrub` names the missing blobs, where they are live, and what to do.
        var shown = await platform.SkiffAsync("scrub");
        shown.ExitCode.ShouldBe(0, shown.ToString());
        shown.Stdout.ShouldContain(manifest.Source.ToString()[7..19]);
        shown.Stdout.ShouldContain("MISSING");
        shown.Stdout.ShouldContain("Deploy those locations' projects again");

        // The next deploy uploads what the server lacks and goes through.
        var again = await platform.SkiffAsync("deploy", hello, "--location", "a");

        again.ExitCode.ShouldBe(0, again.ToString());
        (await platform.Server.Blobs.VerifyAsync(package, TimeSpan.Zero, CancellationToken.None)).ShouldBeTrue();
        (await platform.Server.Blobs.VerifyAsync(manifest.Source, TimeSpan.Zero, CancellationToken.None)).ShouldBeTrue();
        foreach (var blob in await ScrubReportAsync(platform))
        {
            ((bool)blob!["restored"]!).ShouldBeTrue();
            blob["releases"]!.AsArray().ShouldBeEmpty();
        }

        // An agent that has to fetch everything again (a new host, an emptied cache) brings the location back.
        await platform.StopAgentAsync();
        Directory.Delete(Path.Combine(platform.DataDirectory, "agent"), recursive: true);
        await platform.StartAgentAsync();
        CliProcess.Result run;
        using (var deadline = new CancellationTokenSource(Deadline))
        {
            while ((run = await platform.SkiffAsync("run", "a", "hello")).ExitCode != 0)
            {
                deadline.IsCancellationRequested.ShouldBeFalse(run.ToString());
            }
        }

        run.Stdout.ShouldContain("Hello, world!");
    }

    private static async Task<JsonArray> ScrubReportAsync(EmbeddedPlatform platform)
    {
        using var http = platform.Http();
        var body = JsonNode.Parse(await http.GetStringAsync(new Uri("api/v1/blobs/scrub", UriKind.Relative)))!;
        ((long)body["bytes_per_second"]!).ShouldBe(Scrubber.DefaultBytesPerSecond);
        return body["quarantined"]!.AsArray();
    }

    private static async Task FlipAByteAsync(EmbeddedPlatform platform, S3Server? s3, string? bucket, Digest blob)
    {
        if (s3 is null)
        {
            var path = Path.Combine(platform.DataDirectory, "server", "blobs", "blobs", "sha256", blob.Hex);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var bytes = await File.ReadAllBytesAsync(path);
            bytes[bytes.Length / 2] ^= 0x01;
            await File.WriteAllBytesAsync(path, bytes);
            return;
        }

        using var client = s3.CreateClient();
        var key = $"platform/blobs/sha256/{blob.Hex}";
        byte[] stored;
        using (var response = await client.GetObjectAsync(bucket, key))
        using (var copy = new MemoryStream())
        {
            await response.ResponseStream.CopyToAsync(copy);
            stored = copy.ToArray();
        }

        stored[stored.Length / 2] ^= 0x01;
        await client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = key, InputStream = new MemoryStream(stored), UseChunkEncoding = false });
    }
}
