using System.Buffers;
using System.IO.Pipelines;

namespace Skiff.Sdk.Protocol;

/// <summary>
/// Reads newline-delimited frames from a stream. A frame longer than the limit is skipped up to its
/// newline and reported as <see cref="Frame.TooLarge"/>, so one bad request cannot take the memory of
/// the process or desynchronize the stream.
/// </summary>
internal sealed class FrameReader(Stream stream, int maxFrameBytes)
{
    private readonly PipeReader _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
    private bool _skipping;

    public readonly record struct Frame(byte[]? Bytes, bool TooLarge);

    /// <summary>The next frame, or null at the end of the stream.</summary>
    public async Task<Frame?> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var newline = buffer.PositionOf((byte)'\n');
            if (newline is { } end)
            {
                var line = buffer.Slice(0, end);
                var tooLarge = _skipping || line.Length > maxFrameBytes;
                var bytes = tooLarge ? null : line.ToArray();
                _reader.AdvanceTo(buffer.GetPosition(1, end));
                _skipping = false;
                return new Frame(bytes, tooLarge);
            }

            if (buffer.Length > maxFrameBytes)
            {
                // Drop what we have and keep dropping until the newline that ends this frame.
                _skipping = true;
                _reader.AdvanceTo(buffer.End);
                continue;
            }

            if (result.IsCompleted)
            {
                _reader.AdvanceTo(buffer.End);
                return null;
            }

            _reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }
}
