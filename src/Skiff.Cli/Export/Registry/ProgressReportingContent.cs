using System.Net;

namespace Skiff.Cli.Export.Registry;

/// <summary>
/// A request body that reports progress each time the connection has taken one more write of it, so a
/// watchdog can tell an upload that is slow from one that stopped (<see cref="RegistryClient"/>'s stall timeout).
/// HttpClient writes the next buffer only once the connection took the last one, and a registry that stops reading
/// leaves that write pending once the socket's buffers are full: then no progress is reported.
/// </summary>
internal sealed class ProgressReportingContent : HttpContent
{
    private readonly HttpContent _inner;
    private readonly Action _progress;

    public ProgressReportingContent(HttpContent inner, Action progress)
    {
        _inner = inner;
        _progress = progress;
        foreach (var header in inner.Headers.Where(h => !h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)))
        {
            Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        Headers.ContentLength = inner.Headers.ContentLength;
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        _inner.CopyToAsync(new ReportingStream(stream, _progress), cancellationToken);

    protected override bool TryComputeLength(out long length)
    {
        length = _inner.Headers.ContentLength ?? 0;
        return _inner.Headers.ContentLength is not null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>The connection's stream, reporting each write once it completed.</summary>
    private sealed class ReportingStream(Stream connection, Action progress) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await connection.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            progress();
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count)
        {
            connection.Write(buffer, offset, count);
            progress();
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => connection.FlushAsync(cancellationToken);

        public override void Flush() => connection.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
