using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Skiff.Cli.Tests.Export;

/// <summary>
/// A registry on a plain TCP listener (127.0.0.1, a free port) that stops answering where a test wants it to, which
/// Kestrel cannot be made to do. A TLS handshake is refused as a plain-http registry refuses it (so --insecure-registry
/// falls back to http). Silent, it then reads the first byte of a request and never answers. Else it answers
/// <c>GET /v2/</c> (200), every <c>HEAD</c> of a blob (404) and the <c>POST</c> of an upload (202), and hands a blob's
/// <c>PUT</c> to the test (<see cref="Upload"/>), which reads as much of it as it wants and answers or not. Connections
/// stay open until it is disposed: a closed one would be a dropped connection, not a registry that stopped answering.
/// </summary>
internal sealed class StallingRegistry : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly bool _silent;
    private readonly List<TcpClient> _connections = [];
    private readonly Task _accepting;

    private StallingRegistry(TcpListener listener, bool silent)
    {
        _listener = listener;
        _silent = silent;
        _accepting = AcceptAsync();
    }

    public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Set once a client sent an http request (not a TLS handshake).</summary>
    public TaskCompletionSource Asked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The first blob <c>PUT</c>, its headers read, its body not.</summary>
    public TaskCompletionSource<BlobUpload> Upload { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="silent">Never answer an http request.</param>
    /// <param name="receiveBuffer">
    /// The socket's receive buffer, when the test needs an upload to block once the client's and this buffer are full;
    /// by default the kernel grows it (up to tcp_rmem's maximum) while the test reads.
    /// </param>
    public static StallingRegistry Start(bool silent, int? receiveBuffer = null)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        if (receiveBuffer is { } size)
        {
            // Set before listening: accepted sockets inherit it, and the window is agreed in the handshake.
            listener.Server.ReceiveBufferSize = size;
        }

        listener.Start();
        return new StallingRegistry(listener, silent);
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

            _ = ServeAsync(connection.GetStream());
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

            Asked.TrySetResult();
            if (_silent)
            {
                return;
            }

            var prefix = Encoding.ASCII.GetString(first);
            while (true)
            {
                var head = await ReadHeadAsync(stream, prefix);
                prefix = "";
                var requestLine = head[0].Split(' ');
                var length = head.Skip(1).Select(h => h.Split(':', 2)).Where(h => h[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                    .Select(h => long.Parse(h[1].Trim(), CultureInfo.InvariantCulture)).FirstOrDefault();
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
                        await AnswerAsync(stream, "202 Accepted", $"Location: {requestLine[1]}1\r\n");
                        break;
                    case "PUT":
                        var digest = Uri.UnescapeDataString(requestLine[1].Split("digest=")[1].Split('&')[0]);
                        Upload.TrySetResult(new BlobUpload(digest, length, stream));
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

    /// <summary>The request line and headers, up to the empty line (byte by byte: the body that follows is not read).</summary>
    private static async Task<List<string>> ReadHeadAsync(NetworkStream stream, string prefix)
    {
        var text = new StringBuilder(prefix);
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

    /// <summary>Reads up to <paramref name="count"/> bytes (fewer if the client closed); returns how many.</summary>
    public static async Task<long> ReadAsync(Stream stream, long count)
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

    public static Task AnswerAsync(Stream stream, string status, string headers = "") =>
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

/// <summary>A blob's <c>PUT</c> as a registry gets it: the digest it names, its Content-Length, and the connection with its body unread.</summary>
internal sealed record BlobUpload(string Digest, long Length, Stream Body);
