using Skiff.Cli.Tests.Export;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// `skiff export --push` to a registry that stops answering: it fails after --push-timeout with no progress, exit 1,
/// saying during which step, instead of waiting until Ctrl-C.
/// </summary>
public sealed partial class ExportImageTests
{
    [Fact]
    public async Task A_registry_that_accepts_the_connection_and_never_answers_fails_the_push_after_the_push_timeout()
    {
        await using var silent = StallingRegistry.Start(silent: true);
        // A full release id needs no server, and the base is only checked to exist before the registry is asked.
        var release = "sha256:" + new string('d', 64);
        var someBase = fixture.Workspace.PathTo("push", "stall-base.tar");
        Directory.CreateDirectory(Path.GetDirectoryName(someBase)!);
        await File.WriteAllTextAsync(someBase, "only its existence is checked before the registry");

        var pushed = await PushAsync(release, someBase, $"{silent.Address}/{Repository}:silent", null, "--push-timeout", "1s");
        var badTimeout = await PushAsync(release, someBase, $"{silent.Address}/{Repository}:silent", null, "--push-timeout", "soon");

        // The registry took the connection and the request (over http, after refusing TLS): the push failed on its
        // silence, not on a refused connection or handshake.
        await silent.Asked.Task.WaitAsync(StallDeadline);
        pushed.ExitCode.ShouldBe(1, pushed.ToString());
        pushed.Stderr.ShouldContain($"registry {silent.Address} stopped answering for 1 s during GET /v2/; nothing was tagged.");
        pushed.Stderr.ShouldContain("Run the same push again once the registry is back: the blobs it already has are not sent again.");
        pushed.Stdout.ShouldBeEmpty();
        pushed.Stderr.ShouldNotContain("   at ");
        badTimeout.ExitCode.ShouldBe(2, badTimeout.ToString());
        badTimeout.Stderr.ShouldContain("--push-timeout: 'soon' is not a duration");
    }

    [Fact]
    public async Task A_registry_that_stops_reading_a_blob_in_the_middle_of_its_upload_fails_the_push_naming_the_blob()
    {
        var baseArchive = await BaseArchiveAsync();
        var release = await DeployAsync("pushed-stall", null);
        await using var stalling = StallingRegistry.Start(silent: false);

        var pushing = PushAsync(release, baseArchive, $"{stalling.Address}/{Repository}:stall", null, "--push-timeout", "2s");
        // The first blob is the base's layer (86 MB): 1 MiB of it read, then not another byte, while the client's socket
        // buffers (a few MB) fill and its writes wait.
        var upload = await stalling.Upload.Task.WaitAsync(StallDeadline);
        var read = await StallingRegistry.ReadAsync(upload.Body, 1 << 20);
        var pushed = await pushing;

        read.ShouldBe(1 << 20);
        upload.Length.ShouldBeGreaterThan(64L << 20, "the blob is far larger than the socket buffers, so the upload stalls in its middle");
        pushed.ExitCode.ShouldBe(1, pushed.ToString());
        pushed.Stderr.ShouldContain($"registry {stalling.Address} stopped answering for 2 s during PUT of blob {upload.Digest} ({upload.Length} bytes); nothing was tagged.");
        pushed.Stderr.ShouldContain("the blobs it already has are not sent again");
        pushed.Stdout.ShouldBeEmpty();
        pushed.Stderr.ShouldNotContain("   at ");
    }

    // Against a hang, not a measure: the CLI has already exited when these are awaited.
    private static readonly TimeSpan StallDeadline = TimeSpan.FromMinutes(2);
}
