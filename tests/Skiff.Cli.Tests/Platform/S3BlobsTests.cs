using Skiff.Core;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>`skiff server --blobs s3://…` against a real S3 protocol server (s3rver), with a real agent and CLI.</summary>
public sealed class S3BlobsTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task A_server_with_blobs_in_s3_deploys_and_runs_and_keeps_every_blob_in_the_bucket()
    {
        var s3 = await S3Server.Shared;
        var bucket = await s3.CreateBucketAsync();
        var data = _workspace.PathTo("server");
        var hello = _workspace.CopySample("Hello");
        await using var server = Start("server", "--data", data, "--port", "0", "--blobs", $"s3://{bucket}/platform?endpoint={s3.Endpoint}");
        var url = (await server.WaitForLineAsync(line => line.StartsWith("skiff server listening on ", StringComparison.Ordinal), Deadline)).Split(' ')[4];
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
        var keys = await s3.KeysAsync(bucket);
        keys.ShouldNotBeEmpty();
        keys.Where(key => !key.StartsWith("platform/blobs/sha256/", StringComparison.Ordinal) || !Digest.TryParseHex(key["platform/blobs/sha256/".Length..], out _)).ShouldBeEmpty();
        // The release, its environment, its source and at least one package.
        keys.Count.ShouldBeGreaterThanOrEqualTo(4);
        Directory.Exists(Path.Combine(data, "blobs")).ShouldBeFalse();
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

    private Task<CliProcess.Result> SkiffAsync(params string[] arguments) =>
        CliProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments], _workspace.Root, _workspace.PathTo("home"));
}
