using System.Text;
using Skiff.Sdk.Protocol;

namespace Skiff.Sdk.Tests.Protocol;

public sealed class FrameReaderTests
{
    [Fact]
    public async Task ReadAsync_ReassemblesFramesSplitAcrossAnyChunkBoundaries()
    {
        var frames = new[] { """{"type":"health","id":1}""", "", """{"type":"list","id":"two"}""", "x", new string('y', 500) };
        var stream = new TrickleStream(Encoding.UTF8.GetBytes(string.Join('\n', frames) + "\n"), seed: 42);
        var reader = new FrameReader(stream, maxFrameBytes: 1024);

        var read = await ReadAllAsync(reader);

        read.ShouldBe(frames);
        stream.Reads.ShouldBeGreaterThan(frames.Sum(f => f.Length + 1) / 3, "the stream must really have been read a few bytes at a time");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(123)]
    public async Task ReadAsync_AnOversizedFrame_IsReportedTooLarge_AndTheNextFrameReadsFine(int seed)
    {
        var input = "ok-1\n" + new string('z', 100) + "\nok-2\n" + new string('w', 17) + "\nok-3\n";
        var reader = new FrameReader(new TrickleStream(Encoding.UTF8.GetBytes(input), seed), maxFrameBytes: 16);

        var read = await ReadAllAsync(reader);

        read.ShouldBe(["ok-1", "<too large>", "ok-2", "<too large>", "ok-3"]);
    }

    [Fact]
    public async Task ReadAsync_AnOversizedFrameArrivingInOneRead_IsReportedTooLarge()
    {
        var input = new string('z', 100) + "\nok\n";
        var reader = new FrameReader(new MemoryStream(Encoding.UTF8.GetBytes(input)), maxFrameBytes: 16);

        var read = await ReadAllAsync(reader);

        read.ShouldBe(["<too large>", "ok"]);
    }

    [Fact]
    public async Task ReadAsync_AFrameOfExactlyTheLimit_IsAccepted()
    {
        var input = new string('a', 16) + "\n" + new string('b', 17) + "\n";
        var reader = new FrameReader(new TrickleStream(Encoding.UTF8.GetBytes(input), seed: 3), maxFrameBytes: 16);

        var read = await ReadAllAsync(reader);

        read.ShouldBe([new string('a', 16), "<too large>"]);
    }

    [Fact]
    public async Task ReadAsync_AtTheEndOfTheStream_ReturnsNull()
    {
        var reader = new FrameReader(new MemoryStream(Encoding.UTF8.GetBytes("one\n")), maxFrameBytes: 16);

        (await reader.ReadAsync(CancellationToken.None)).ShouldNotBeNull();
        (await reader.ReadAsync(CancellationToken.None)).ShouldBeNull();
        (await reader.ReadAsync(CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task ReadAsync_APartialFrameAtTheEndOfTheStream_IsDropped()
    {
        // Frames end with a newline; bytes without one are a request cut off by the peer going away.
        var reader = new FrameReader(new MemoryStream(Encoding.UTF8.GetBytes("one\ntw")), maxFrameBytes: 16);

        var read = await ReadAllAsync(reader);

        read.ShouldBe(["one"]);
    }

    [Fact]
    public async Task ReadAsync_OnAnEmptyStream_ReturnsNull()
    {
        var reader = new FrameReader(new MemoryStream(), maxFrameBytes: 16);

        (await reader.ReadAsync(CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task ReadAsync_LeavesTheStreamOpen()
    {
        var stream = new MemoryStream(Encoding.UTF8.GetBytes("one\n"));
        var reader = new FrameReader(stream, maxFrameBytes: 16);

        await ReadAllAsync(reader);

        stream.CanRead.ShouldBeTrue();
    }

    [Fact]
    public async Task ReadAsync_IsCanceledByItsToken()
    {
        // A stream that never gets more data: the read waits until canceled.
        var reader = new FrameReader(new TrickleStream("{\"partial"u8.ToArray(), seed: 1, endless: true), maxFrameBytes: 16);
        using var cancel = new CancellationTokenSource();

        var read = reader.ReadAsync(cancel.Token);
        await cancel.CancelAsync();

        await Should.ThrowAsync<OperationCanceledException>(read.WaitAsync(TimeSpan.FromSeconds(60)));
    }

    private static async Task<List<string>> ReadAllAsync(FrameReader reader)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var frames = new List<string>();
        while (await reader.ReadAsync(deadline.Token) is { } frame)
        {
            frames.Add(frame.TooLarge ? "<too large>" : Encoding.UTF8.GetString(frame.Bytes!));
            frame.TooLarge.ShouldBe(frame.Bytes is null);
        }

        return frames;
    }

    /// <summary>
    /// A stream that hands out its bytes 1 to 3 at a time, as a slow socket might; when
    /// <paramref name="endless"/>, it then waits for more that never comes instead of ending.
    /// </summary>
    private sealed class TrickleStream(byte[] content, int seed, bool endless = false) : Stream
    {
        private readonly Random _random = new(seed);
        private int _position;

        public int Reads { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Math.Min(Math.Min(buffer.Length, _random.Next(1, 4)), content.Length - _position);
            content.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            Reads++;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (endless && _position == content.Length)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return Read(buffer.Span);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
