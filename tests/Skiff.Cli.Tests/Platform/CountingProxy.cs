using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// A TCP proxy on 127.0.0.1 in front of a server that keeps every byte that passed, each way: to show what went
/// through the server and what did not (with blobs in S3, no blob does).
/// </summary>
internal sealed class CountingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _target;
    private readonly CancellationTokenSource _stopping = new();
    private readonly MemoryStream _toServer = new();
    private readonly MemoryStream _fromServer = new();
    private readonly List<Task> _connections = [];
    private readonly Task _accepting;
    private int _disposed;

    public CountingProxy(Uri target)
    {
        _target = target;
        _listener.Start();
        Url = new UriBuilder(target) { Port = ((IPEndPoint)_listener.LocalEndpoint).Port }.Uri;
        _accepting = AcceptAsync();
    }

    /// <summary>The target's URL with the proxy's port.</summary>
    public Uri Url { get; }

    /// <summary>Everything clients sent to the server so far, as text (HTTP/1.1 and WebSocket frames).</summary>
    public string ToServer => Snapshot(_toServer);

    /// <summary>Everything the server sent to clients so far.</summary>
    public string FromServer => Snapshot(_fromServer);

    public long BytesToServer { get { lock (_toServer) { return _toServer.Length; } } }

    public long BytesFromServer { get { lock (_fromServer) { return _fromServer.Length; } } }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stopping.CancelAsync();
        _listener.Stop();
        Task[] running;
        lock (_connections)
        {
            running = [_accepting, .. _connections];
        }

        await Task.WhenAll(running).ContinueWith(_ => { }, TaskScheduler.Default);
        _stopping.Dispose();
    }

    private static string Snapshot(MemoryStream stream)
    {
        lock (stream)
        {
            return Encoding.Latin1.GetString(stream.GetBuffer(), 0, (int)stream.Length);
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stopping.Token);
            lock (_connections)
            {
                _connections.Add(ServeAsync(client));
            }
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        using (var server = new TcpClient())
        {
            await server.ConnectAsync(_target.Host, _target.Port, _stopping.Token);
            var up = CopyAsync(client.GetStream(), server.GetStream(), _toServer);
            var down = CopyAsync(server.GetStream(), client.GetStream(), _fromServer);
            // Either side closing ends the connection for both.
            await Task.WhenAny(up, down);
        }
    }

    private async Task CopyAsync(NetworkStream from, NetworkStream to, MemoryStream record)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer, _stopping.Token)) > 0)
            {
                lock (record)
                {
                    record.Write(buffer, 0, read);
                }

                await to.WriteAsync(buffer.AsMemory(0, read), _stopping.Token);
            }
        }
        catch (Exception exception) when (exception is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}
