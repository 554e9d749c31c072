using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Skiff.Testing;

/// <summary>
/// The smallest OTLP/HTTP collector: <c>POST /v1/traces</c> on 127.0.0.1 and a free port, each body kept as it came
/// and answered 200 with an empty (valid) protobuf response. No OpenTelemetry.Proto here to decode the bodies: tests
/// check what protobuf carries verbatim, the 16 bytes of a trace id, the 8 of a span id, strings such as span names.
/// </summary>
internal sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly List<byte[]> _bodies = [];
    private readonly Task _serving;
    private TaskCompletionSource _received = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private OtlpReceiver(int port)
    {
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _serving = ServeAsync();
    }

    /// <summary>For OTEL_EXPORTER_OTLP_ENDPOINT (with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf the exporter adds /v1/traces).</summary>
    public string Endpoint { get; }

    /// <summary>The paths posted to, in order, for a failure message.</summary>
    public List<string> Paths { get; } = [];

    public static OtlpReceiver Start()
    {
        // A port the system says is free; HttpListener cannot pick one itself.
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return new OtlpReceiver(port);
    }

    /// <summary>The environment that points a process's trace export here, and nothing else.</summary>
    public Dictionary<string, string> Environment() => new()
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Endpoint,
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
    };

    /// <summary>Waits until the bodies received so far satisfy <paramref name="condition"/>; fails after <paramref name="deadline"/>.</summary>
    public async Task<IReadOnlyList<byte[]>> WaitForAsync(Func<IReadOnlyList<byte[]>, bool> condition, TimeSpan deadline)
    {
        var until = Stopwatch.GetTimestamp() + (long)(deadline.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            Task next;
            lock (_bodies)
            {
                if (condition(_bodies))
                {
                    return [.. _bodies];
                }

                next = _received.Task;
            }

            var left = TimeSpan.FromSeconds((until - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"the OTLP receiver did not get what was expected within {deadline}: {_bodies.Count} bodies posted to {string.Join(", ", Paths)}");
            }

            await Task.WhenAny(next, Task.Delay(left));
        }
    }

    /// <summary>Whether <paramref name="body"/> holds <paramref name="bytes"/> verbatim.</summary>
    public static bool Holds(byte[] body, ReadOnlySpan<byte> bytes) => body.AsSpan().IndexOf(bytes) >= 0;

    public static bool Holds(byte[] body, string text) => Holds(body, System.Text.Encoding.UTF8.GetBytes(text));

    public static byte[] Bytes(ActivityTraceId trace)
    {
        var bytes = new byte[16];
        trace.CopyTo(bytes);
        return bytes;
    }

    public static byte[] Bytes(ActivitySpanId span)
    {
        var bytes = new byte[8];
        span.CopyTo(bytes);
        return bytes;
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception exception) when (exception is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.ContentLength64 = 0;
            context.Response.Close();
            lock (_bodies)
            {
                Paths.Add(context.Request.HttpMethod + " " + context.Request.Url?.AbsolutePath);
                if (context.Request.Url?.AbsolutePath == "/v1/traces")
                {
                    _bodies.Add(body.ToArray());
                }

                var received = _received;
                _received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                received.SetResult();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _serving;
    }
}
