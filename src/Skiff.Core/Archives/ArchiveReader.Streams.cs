using System.Buffers.Binary;

namespace Skiff.Core.Archives;

internal static partial class ArchiveReader
{
    /// <summary>
    /// Sits between the gzip and tar readers: counts and CRCs every expanded byte, and stops the read
    /// the moment the count passes the limit, whatever the tar headers claim.
    /// </summary>
    private sealed class ExpandedStream(Stream inner, long limit, Func<Exception> overLimit) : Stream
    {
        public uint Crc { get; private set; }

        public override long Length => _length;

        private long _length;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            Count(buffer[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Count(buffer.Span[..read]);
            return read;
        }

        private void Count(ReadOnlySpan<byte> read)
        {
            _length += read.Length;
            if (_length > limit)
            {
                throw overLimit();
            }

            Crc = Crc32.Update(Crc, read);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>
    /// Passes the compressed source through and remembers its last eight bytes, which in a complete
    /// gzip member are the trailer: CRC-32 and length mod 2^32, little endian.
    /// </summary>
    private sealed class TailStream(Stream inner) : Stream
    {
        private const int TrailerBytes = 8;

        private readonly byte[] _tail = new byte[TrailerBytes];
        private int _tailLength;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        /// <summary>Reads what is left of the source, up to just past <paramref name="maxBytes"/>, and returns how much there was.</summary>
        public async Task<long> SkipToEndAsync(int maxBytes, CancellationToken cancellationToken)
        {
            var buffer = new byte[4096];
            long skipped = 0;
            int read;
            while (skipped <= maxBytes && (read = await ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                skipped += read;
            }

            return skipped;
        }

        public bool EndsWithGzipTrailer(uint crc, long length) =>
            _tailLength == TrailerBytes
            && BinaryPrimitives.ReadUInt32LittleEndian(_tail) == crc
            && BinaryPrimitives.ReadUInt32LittleEndian(_tail.AsSpan(4)) == unchecked((uint)length);

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            Remember(buffer[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Remember(buffer.Span[..read]);
            return read;
        }

        private void Remember(ReadOnlySpan<byte> read)
        {
            if (read.Length >= TrailerBytes)
            {
                read[^TrailerBytes..].CopyTo(_tail);
                _tailLength = TrailerBytes;
                return;
            }

            var keep = Math.Min(_tailLength, TrailerBytes - read.Length);
            _tail.AsSpan(_tailLength - keep, keep).CopyTo(_tail);
            read.CopyTo(_tail.AsSpan(keep));
            _tailLength = keep + read.Length;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
