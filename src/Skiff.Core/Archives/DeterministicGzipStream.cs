using System.Buffers.Binary;
using System.IO.Compression;

namespace Skiff.Core.Archives;

/// <summary>
/// A write-only stream that gzips what is written to it with a fixed header, so the same input gives
/// the same bytes on every machine. <see cref="GZipStream"/> cannot: zlib writes the OS byte of the
/// platform it was compiled for (3 on Linux, 19 on macOS, 10 on Windows), and a blob's digest must
/// not depend on where it was built. Disposing it finishes the gzip member; the destination stays open.
/// The deflate bytes still come from the zlib the .NET runtime bundles: a runtime with another zlib
/// version may compress differently, giving a new digest for the same files (never a wrong one).
/// </summary>
internal sealed class DeterministicGzipStream : Stream
{
    // RFC 1952: magic 1f 8b, CM 8 (deflate), FLG 0 (no name, comment or extra), MTIME 0 (none),
    // XFL 0, OS 255 (unknown).
    private static readonly byte[] Header = [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff];

    // DeflateStream writes nothing at all when nothing was written to it, which is not a valid deflate
    // stream; this is what zlib emits for empty input: one final fixed-Huffman block, end of block only.
    private static readonly byte[] EmptyDeflate = [0x03, 0x00];

    private readonly Stream _destination;
    private readonly DeflateStream _deflate;
    private bool _headerWritten;
    private bool _finished;
    private uint _crc;
    private long _length;

    public DeterministicGzipStream(Stream destination)
    {
        _destination = destination;
        _deflate = new DeflateStream(destination, CompressionLevel.Optimal, leaveOpen: true);
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => !_finished;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        if (!_headerWritten)
        {
            _destination.Write(Header);
            _headerWritten = true;
        }

        _crc = Crc32.Update(_crc, buffer);
        _length += buffer.Length;
        _deflate.Write(buffer);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        if (!_headerWritten)
        {
            await _destination.WriteAsync(Header, cancellationToken).ConfigureAwait(false);
            _headerWritten = true;
        }

        _crc = Crc32.Update(_crc, buffer.Span);
        _length += buffer.Length;
        await _deflate.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    // Deliberately does nothing: a deflate flush ends a block early, which would make the output
    // depend on when callers flush instead of only on the bytes written.
    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_finished)
        {
            if (!_headerWritten)
            {
                _destination.Write(Header);
            }

            _deflate.Dispose();
            if (_length == 0)
            {
                _destination.Write(EmptyDeflate);
            }

            Span<byte> trailer = stackalloc byte[8];
            WriteTrailer(trailer);
            _destination.Write(trailer);
            _finished = true;
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_finished)
        {
            if (!_headerWritten)
            {
                await _destination.WriteAsync(Header).ConfigureAwait(false);
            }

            await _deflate.DisposeAsync().ConfigureAwait(false);
            if (_length == 0)
            {
                await _destination.WriteAsync(EmptyDeflate).ConfigureAwait(false);
            }

            var trailer = new byte[8];
            WriteTrailer(trailer);
            await _destination.WriteAsync(trailer).ConfigureAwait(false);
            _finished = true;
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    // RFC 1952: CRC-32 of the uncompressed data, then its length mod 2^32, both little endian.
    private void WriteTrailer(Span<byte> trailer)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(trailer, _crc);
        BinaryPrimitives.WriteUInt32LittleEndian(trailer[4..], unchecked((uint)_length));
    }
}
