using System.Buffers;
using System.Text.Json;
using Skiff.Sdk.Events;

namespace Skiff.Sdk.Protocol;

/// <summary>
/// Writes one run's event frames (<see cref="RunEventFrame"/>), byte for byte as <see cref="ProtocolJson.Frame"/> with
/// <see cref="ProtocolJson.Wire"/> writes them, through one buffer it keeps. Not thread-safe: a run's events are framed
/// one at a time, under its <see cref="RunEventStream"/>'s lock.
/// </summary>
/// <remarks>
/// A run that logs in a loop frames an event per line. Through <see cref="ProtocolJson.Wire"/>, whose escaping is not the
/// generated context's, the serializer cannot take the generated code's fast path: it walks RunEvent's metadata property
/// by property, code compiled anew in every run's process. Here the generated context's own options (the fast path)
/// write into a writer that carries the wire's escaping, which is where escaping happens: the property names are ASCII,
/// and every string value, dictionary key and JSON value is written by the writer.
/// </remarks>
internal sealed class RunEventFrames
{
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private readonly Utf8JsonWriter _writer;

    public RunEventFrames() =>
        _writer = new Utf8JsonWriter(_buffer, new JsonWriterOptions { Encoder = ProtocolJson.Wire.Options.Encoder, SkipValidation = true });

    /// <summary>The event as one frame: its JSON and the newline that ends it.</summary>
    public byte[] Frame(RunEvent runEvent)
    {
        _buffer.ResetWrittenCount();
        _writer.Reset();
        JsonSerializer.Serialize(_writer, new RunEventFrame(runEvent), ProtocolJson.Default.RunEventFrame);
        var frame = new byte[_buffer.WrittenCount + 1];
        _buffer.WrittenSpan.CopyTo(frame);
        frame[^1] = (byte)'\n';
        return frame;
    }
}
