using System.Net;
using System.Net.Sockets;
using System.Text;

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
        await using var silent = StallingRegistry.Start(answers: false);
        // A full release id needs no server, and the base is only checked to exist before the registry is asked.
        var release = "sha256:" + new string('d', 64);
        var someBase = fixture.Workspace.PathTo("push", "stall-base.tar");
        Directory.CreateDirectory(Path.GetDirectoryName(someBase)!);
        await File.WriteAllTextAsync(someBase, "only its existence is checked before the registry");

        var pushed = await PushAsync(release, someBase, $"{silent.Address}/{Repository}:silent", null, "--push-timeout", "1s");
        var badTimeout = await PushAsync(release, someBase, $"{silent.Address}/{Repository}:silent", null, "--push-timeout", "soon");

        // The registry took the connection: the push failed on its silence, not on a refused connection.
        await silent.Accepted.Task.WaitAsync(StallDeadline);
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
        await using var stalling = StallingRegistry.Start(answers: true);

        var pushed = await PushAsync(release, baseArchive, $"{stalling.Address}/{Repository}:stall", null, "--push-timeout", "2s");

        var upload = await stalling.Stalled.Task.WaitAsync(StallDeadline);
        upload.BytesRead.ShouldBeLessThan(upload.Length, "the registry stopped reading in the middle of the blob");
        pushed.ExitCode.ShouldBe(1, pushed.ToString());
        pushed.Stderr.ShouldContain($"registry {stalling.Address} stopped answering for 2 s during PUT of blob {upload.Digest} ({upload.Length} bytes); nothing was tagged.");
        pushed.Stderr.ShouldContain("the blobs it already has are not sent again");
        pushed.Stdout.ShouldBeEmpty();
        pushed.Stderr.ShouldNotContain("   at ");
    }

    // Against a hang, not a measure: the CLI has already exited when these are awaited.
    private static readonly TimeSpan StallDeadline = TimeSpan.FromMinutes(2);

    /// <summary>What a <see cref="StallingRegistry"/> read of the blob upload it stopped reading.</summary>
    private sealed record StalledUpload(string Digest, long Length, long BytesRead);

    /// <summary>
    /// A registry on a plain TCP listener (127.0.0.1, a free port) that stops answering where a test wants it to, which
    /// Kestrel cannot be made to do: with <c>answers: false</c> it accepts connections and never reads or writes a byte;
    /// else it answers <c>GET /v2/</c> (200), every <c>HEAD</c> of a blob (404) and the <c>POST</c> of an upload (202), then
    /// reads 1 MiB of the blob's <c>PUT</c> and stops reading. Connections stay open until it is disposed: a closed one
    /// would be a dropped connection, not a registry that stopped answering.
    /// </summary>
    private sealed class StallingRegistry : IAsyncDisposable
    {
        private const int ReadBeforeStalling = 1 << 20;
        private readonly TcpListener _listener;
        private readonly bool _answers;
        private readonly List<TcpClient> _connections = [];
        private readonly Task _accepting;

        private StallingRegistry(TcpListener listener, bool answers)
        {
            _listener = listener;
            _answers = answers;
            _accepting = AcceptAsync();
        }

        public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

        /// <summary>Set once a client connected.</summary>
        public TaskCompletionSource Accepted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Set once the registry stopped reading a blob's upload.</summary>
        public TaskCompletionSource<StalledUpload> Stalled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static StallingRegistry Start(bool answers)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return new StallingRegistry(listener, answers);
        }

        private async Task AcceptAsync()
        {
            while (true)
            {
                TcpClient connection;
                try
                {
                    connection = await _listener.AcceptTcpClientAsync();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return;
                }

                lock (_connections)
                {
                    _connections.Add(connection);
                }

                Accepted.TrySetResult();
                if (_answers)
                {
                    _ = ServeAsync(connection.GetStream());
                }
            }
        }

        private async Task ServeAsync(NetworkStream stream)
        {
            try
            {
                var first = new byte[1];
                if (await stream.ReadAsync(first) == 0 || first[0] == 0x16)
                {
                    // A TLS ClientHello (--insecure-registry tries https first): refused as a plain-http registry refuses it.
                    stream.Socket.Close();
                    return;
                }

                var prefix = (char)first[0];
                while (true)
                {
                    var head = await ReadHeadAsync(stream, prefix);
                    prefix = '\0';
                    var requestLine = head[0].Split(' ');
                    var length = head.Skip(1).Select(h => h.Split(':', 2)).Where(h => h[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase)).Select(h => long.Parse(h[1].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
                    switch (requestLine[0])
                    {
                        case "GET":
                            await AnswerAsync(stream, "200 OK");
                            break;
                        case "HEAD":
                            await AnswerAsync(stream, "404 Not Found");
                            break;
                        case "POST":
                            await ReadAsync(stream, length);
                            await AnswerAsync(stream, "202 Accepted", $"Location: /v2/{Repository}/blobs/uploads/1\r\n");
                            break;
                        case "PUT":
                            var read = await ReadAsync(stream, Math.Min(length, ReadBeforeStalling));
                            var digest = Uri.UnescapeDataString(requestLine[1].Split("digest=")[1].Split('&')[0]);
                            Stalled.TrySetResult(new StalledUpload(digest, length, read));
                            return;
                        default:
                            return;
                    }
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // The client gave up on the connection, or the registry is being disposed.
            }
        }

        /// <summary>The request line and headers, up to the empty line.</summary>
        private static async Task<List<string>> ReadHeadAsync(NetworkStream stream, char prefix)
        {
            var text = new StringBuilder(prefix == '\0' ? "" : prefix.ToString());
            var one = new byte[1];
            while (!text.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                if (await stream.ReadAsync(one) == 0)
                {
                    throw new IOException("the client closed the connection");
                }

                text.Append((char)one[0]);
            }

            return [.. text.ToString().Split("\r\n", StringSplitOptions.RemoveEmptyEntries)];
        }

        private static async Task<long> ReadAsync(NetworkStream stream, long count)
        {
            var buffer = new byte[64 * 1024];
            var read = 0L;
            while (read < count)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count - read)));
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            return read;
        }

        private static Task AnswerAsync(NetworkStream stream, string status, string headers = "") =>
            stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\n\r\n")).AsTask();

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            await _accepting;
            lock (_connections)
            {
                foreach (var connection in _connections)
                {
                    connection.Dispose();
                }
            }
        }
    }
}
