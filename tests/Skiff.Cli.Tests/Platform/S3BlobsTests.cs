using System.Text.Json.Nodes;
using Amazon.S3.Model;
using Skiff.Core;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>`skiff server --blobs s3://…` against a real S3 protocol server (s3rver), with a real agent and CLI: blobs go to and from S3 directly.</summary>
public sealed class S3BlobsTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task A_server_with_blobs_in_s3_deploys_and_runs_without_carrying_a_blob_and_names_s3_when_it_is_gone()
    {
        var s3 = await S3Server.Shared;
        var bucket = await s3.CreateBucketAsync();
        // Proxies that keep what passed: one in front of S3 (the server signs URLs for it, so the CLI's and the
        // agent's S3 traffic passes it too), one in front of the server (everything the CLI and the agent send it).
        await using var s3Proxy = new CountingProxy(s3.Endpoint);
        var data = _workspace.PathTo("server");
        var hello = PlatformFixture.SharedHello;
        await using var server = Start("server", "--data", data, "--port", "0", "--blobs", $"s3://{bucket}/platform?endpoint={s3Proxy.Url}");
        var serverUrl = new Uri((await server.WaitForLineAsync(line => line.StartsWith("skiff server listening on ", StringComparison.Ordinal), Deadline)).Split(' ')[4]);
        await using var proxy = new CountingProxy(serverUrl);
        var url = proxy.Url.ToString();
        var token = File.ReadAllText(Path.Combine(data, "token")).Trim();
        await using var agent = Start("agent", "--server", url, "--token", token, "--cache", _workspace.PathTo("agent"), "--name", "worker-1");

        var deploy = await SkiffAsync("deploy", hello, "--location", "s3", "--server", url, "--token", token);
        var run = await SkiffAsync("run", "s3", "hello", "--server", url, "--token", token);
        var gc = await SkiffAsync("gc", "--server", url, "--token", token);

        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("Hello, world!");
        gc.ExitCode.ShouldBe(0, gc.ToString());
        gc.Stdout.ShouldContain("deleted 0 blob(s)");
        var objects = await ObjectsAsync(s3, bucket);
        objects.Keys.Where(key => !key.StartsWith("platform/blobs/sha256/", StringComparison.Ordinal) || !Digest.TryParseHex(key["platform/blobs/sha256/".Length..], out _)).ShouldBeEmpty();
        // The release, its environment, its source and at least one package.
        objects.Count.ShouldBeGreaterThanOrEqualTo(4);
        Directory.Exists(Path.Combine(data, "blobs")).ShouldBeFalse();

        // Every blob went up to S3 and down to the agent, and neither way through the server: all that passed it,
        // each way, is less than the blobs that moved.
        var blobBytes = objects.Values.Sum();
        proxy.ToServer.ShouldNotContain("PUT /api/v1/blobs/");
        Count(proxy.ToServer, "POST /api/v1/blobs/sha256:").ShouldBe(objects.Count, "one commit per blob");
        Count(proxy.ToServer, "GET /api/v1/blobs/sha256:").ShouldBe(objects.Count, "the agent asked for every blob");
        Count(proxy.FromServer, "HTTP/1.1 307 Temporary Redirect").ShouldBe(objects.Count, "and was sent to S3 for each");
        proxy.BytesToServer.ShouldBeLessThan(blobBytes);
        proxy.BytesFromServer.ShouldBeLessThan(blobBytes);
        // The blobs crossed the S3 proxy at least twice (up from the CLI, down to the agent), the server's checks
        // once more; the bearer token never did.
        (s3Proxy.BytesToServer + s3Proxy.BytesFromServer).ShouldBeGreaterThan(2 * blobBytes);
        s3Proxy.ToServer.ShouldNotContain(token);

        // S3 gone (its proxy stops): the next deploy fails with one line that names it, and records nothing.
        await s3Proxy.DisposeAsync();
        var blocked = await SkiffAsync("deploy", hello, "--location", "s3", "--server", url, "--token", token);
        var history = await SkiffAsync("history", "s3", "--json", "--server", url, "--token", token);

        blocked.ExitCode.ShouldBe(1, blocked.ToString());
        var error = blocked.Stderr.Split('\n').Where(line => line.StartsWith("error:", StringComparison.Ordinal)).ShouldHaveSingleItem(blocked.ToString());
        error.ShouldContain($"the blob store s3://{bucket}/platform/ at {s3Proxy.Url.GetLeftPart(UriPartial.Authority)} could not");
        error.ShouldContain("Check that it runs and is reachable");
        history.ExitCode.ShouldBe(0, history.ToString());
        JsonNode.Parse(history.Stdout)!.AsArray().Count.ShouldBe(1, history.Stdout);
    }

    [Theory]
    [InlineData("s3://Bad_Bucket", "'Bad_Bucket' is not an S3 bucket name")]
    [InlineData("/var/lib/blobs", "expected s3://BUCKET[/PREFIX]")]
    public async Task A_bad_blobs_value_is_a_usage_error_and_nothing_starts(string value, string expected)
    {
        var data = _workspace.PathTo("bad");

        var result = await CliProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "server", "--data", data, "--port", "0", "--blobs", value],
            _workspace.Root,
            _workspace.PathTo("home"),
            S3Server.Credentials);

        result.ExitCode.ShouldBe(2, result.ToString());
        result.Stderr.ShouldContain($"error: --blobs '{value}' is not a blob store: {expected}");
        Directory.Exists(data).ShouldBeFalse();
    }

    [Fact]
    public async Task Blobs_and_metadata_come_from_the_environment_when_not_given_and_a_bad_value_there_is_named()
    {
        var data = _workspace.PathTo("bad-env");

        var blobs = await CliProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "server", "--data", data, "--port", "0"],
            _workspace.Root,
            _workspace.PathTo("home"),
            new Dictionary<string, string>(S3Server.Credentials) { ["SKIFF_BLOBS"] = "/var/lib/blobs" });
        var metadata = await CliProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "server", "--data", data, "--port", "0"],
            _workspace.Root,
            _workspace.PathTo("home"),
            new Dictionary<string, string> { ["SKIFF_METADATA"] = "mysql://nope" });

        blobs.ExitCode.ShouldBe(2, blobs.ToString());
        blobs.Stderr.ShouldContain("error: SKIFF_BLOBS: ");
        blobs.Stderr.ShouldContain("is not a blob store");
        metadata.ExitCode.ShouldBe(2, metadata.ToString());
        metadata.Stderr.ShouldContain("error: SKIFF_METADATA: ");
        Directory.Exists(data).ShouldBeFalse();
    }

    private RunningProcess Start(params string[] arguments) =>
        RunningProcess.Start(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments],
            _workspace.Root,
            new Dictionary<string, string>(S3Server.Credentials) { ["SKIFF_HOME"] = _workspace.PathTo("home") });

    private static int Count(string text, string what)
    {
        var count = 0;
        for (var at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>Every object in the bucket with its size.</summary>
    private static async Task<Dictionary<string, long>> ObjectsAsync(S3Server s3, string bucket)
    {
        using var client = s3.CreateClient();
        var page = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket });
        page.IsTruncated.ShouldNotBe(true);
        return (page.S3Objects ?? []).ToDictionary(o => o.Key, o => o.Size ?? 0);
    }

    private Task<CliProcess.Result> SkiffAsync(params string[] arguments) =>
        CliProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments], _workspace.Root, _workspace.PathTo("home"));
}
