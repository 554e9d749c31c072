using System.Net;
using Microsoft.Extensions.Time.Testing;
using Skiff.Cli.Export.Registry;

namespace Skiff.Cli.Tests.Export;

/// <summary>
/// The registry client's stall timeout (--push-timeout) is a no-progress timeout, not an overall one: an upload that keeps
/// moving outlives it many times over. Driven in fake time; the CLI tests in Platform/ExportImageTests.Stall.cs show the
/// push failing when the registry stops.
/// </summary>
public sealed class RegistryStallTests
{
    // Against a hang, not a measure.
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task An_upload_that_keeps_moving_is_not_cut_off_however_long_it_takes()
    {
        var stallTimeout = TimeSpan.FromSeconds(10);
        var time = new FakeTimeProvider();
        // A small receive buffer: once the client's socket buffer (a few MB) is full, its writes wait for the test's reads,
        // as on a slow link.
        await using var registry = StallingRegistry.Start(silent: false, receiveBuffer: 64 * 1024);
        using var client = new RegistryClient(ImageReference.Parse($"{registry.Address}/team/hello:1", "x"), null, insecure: true, stallTimeout, time);
        await client.ConnectAsync(CancellationToken.None).WaitAsync(Deadline);
        var blob = new ZeroStream(32 << 20);

        var sending = client.SendAsync(
            () => new HttpRequestMessage(HttpMethod.Put, client.Api("blobs/uploads/1?digest=sha256%3Aslow"))
            {
                Content = new StreamContent(blob, 1 << 16) { Headers = { ContentLength = blob.Length } },
            },
            "PUT of a slow blob",
            CancellationToken.None);
        var upload = await registry.Upload.Task.WaitAsync(Deadline);
        var advanced = TimeSpan.Zero;
        var read = 0L;
        var seen = 0L;
        while (read < upload.Length)
        {
            var chunk = await StallingRegistry.ReadAsync(upload.Body, 1 << 16).WaitAsync(Deadline);
            if (chunk == 0)
            {
                break;
            }

            read += chunk;
            if (blob.Taken > seen)
            {
                // The client took more of the blob since the last step, so its connection took a write. Less than half the
                // timeout a step: the write seen may have come just before the previous step.
                seen = blob.Taken;
                time.Advance(TimeSpan.FromSeconds(4));
                advanced += TimeSpan.FromSeconds(4);
            }
        }

        await StallingRegistry.AnswerAsync(upload.Body, "201 Created");
        using var response = await sending.WaitAsync(Deadline);

        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        read.ShouldBe(blob.Length);
        advanced.ShouldBeGreaterThan(stallTimeout * 3, "the upload took several times the stall timeout");
    }

    /// <summary>A blob of zeros that counts how much of it was read, from any thread.</summary>
    private sealed class ZeroStream(long length) : Stream
    {
        private long _taken;

        public long Taken => Interlocked.Read(ref _taken);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => Taken; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - Taken);
            buffer[..n].Clear();
            Interlocked.Add(ref _taken, n);
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer, offset, count));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
