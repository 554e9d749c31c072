using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Sdk.Events;
using Skiff.Sdk.Protocol;

namespace Skiff.Sdk.Tests.Protocol;

/// <summary>The typed messages on the wire: the shapes docs/code-server-protocol.md shows, through the source-generated context.</summary>
public sealed class CodeServerMessagesTests
{
    [Fact]
    public void Requests_are_written_as_the_protocol_shows_them()
    {
        string Wire(CodeServerRequest request) => Encoding.UTF8.GetString(ProtocolJson.Frame(request, ProtocolJson.Wire.CodeServerRequest));

        Wire(new HealthRequest { Id = 1 }).ShouldBe("{\"type\":\"health\",\"id\":1}\n");
        Wire(new StartRequest("r-1", "etl", new JsonObject { ["rows"] = 10 }, "sha256:ab") { Id = 3 })
            .ShouldBe("{\"type\":\"start\",\"id\":3,\"run\":\"r-1\",\"job\":\"etl\",\"params\":{\"rows\":10},\"release\":\"sha256:ab\"}\n");
        Wire(new ShutdownRequest(30000) { Id = 5 }).ShouldBe("{\"type\":\"shutdown\",\"id\":5,\"grace_ms\":30000}\n");
    }

    [Fact]
    public void An_event_frame_written_from_a_typed_event_reads_back_as_the_agent_reads_it()
    {
        var runEvent = new RunEvent { Run = "r-1", Type = EventTypes.RunFailed, Seq = 7, Ts = DateTimeOffset.UnixEpoch, Reason = "it's <done>" };

        var frame = ProtocolJson.Frame(new RunEventFrame(runEvent), ProtocolJson.Wire.RunEventFrame);
        var read = JsonSerializer.Deserialize(frame.AsSpan(0, frame.Length - 1), ProtocolJson.Wire.CodeServerMessage);

        Encoding.UTF8.GetString(frame).ShouldStartWith("{\"type\":\"event\",\"event\":{\"v\":1,\"seq\":7,");
        Encoding.UTF8.GetString(frame).ShouldContain("\"reason\":\"it's <done>\"");
        var message = read.ShouldBeOfType<RunEventMessage>();
        ((string?)message.Event["run"]).ShouldBe("r-1");
        ((long?)message.Event["seq"]).ShouldBe(7);
        message.Event.Parent.ShouldBeNull();
    }

    [Fact]
    public void A_run_s_frames_are_byte_for_byte_the_wire_s_with_every_field_set_and_with_few()
    {
        // RunEventFrames writes through the generated context's fast path with the wire's escaping: the same bytes. Every
        // property of RunEvent is set (a property added later is set too), with text the two escapings would tell apart.
        const string text = "it's <b>&amp; \"quoted\" été 日本 \u0001 +\\ \n";
        var values = new Dictionary<string, JsonElement> { [text] = SdkJson.ToElement(text), ["n"] = SdkJson.ToElement(new[] { 1.5, -2 }) };
        var full = new RunEvent { Run = text, Type = EventTypes.Log };
        foreach (var property in typeof(RunEvent).GetProperties().Where(p => p.CanWrite))
        {
            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            object value = type == typeof(string) ? text
                : type == typeof(int) ? 3
                : type == typeof(long) ? long.MaxValue
                : type == typeof(double) ? 0.125
                : type == typeof(DateTimeOffset) ? new DateTimeOffset(2026, 11, 29, 21, 0, 0, 123, TimeSpan.FromHours(2))
                : type == typeof(ErrorInfo) ? new ErrorInfo(text, text, text)
                : type == typeof(IReadOnlyDictionary<string, JsonElement>) ? values
                : throw new InvalidOperationException($"RunEvent.{property.Name} is a {type}: give it a value here");
            property.SetValue(full, value);
        }

        var frames = new RunEventFrames();
        foreach (var runEvent in new[] { full, new RunEvent { Run = "r-1", Type = EventTypes.RunSucceeded, Seq = 9 }, full with { Error = new ErrorInfo("T", "m") } })
        {
            Encoding.UTF8.GetString(frames.Frame(runEvent)).ShouldBe(Encoding.UTF8.GetString(ProtocolJson.Frame(new RunEventFrame(runEvent), ProtocolJson.Wire.RunEventFrame)));
        }
    }

    [Fact]
    public void An_error_without_an_id_leaves_the_id_out_and_a_reply_keeps_it_after_the_type()
    {
        string Wire(CodeServerMessage message) => Encoding.UTF8.GetString(ProtocolJson.Frame(message, ProtocolJson.Wire.CodeServerMessage));

        Wire(new ErrorReply("malformed", "no")).ShouldBe("{\"type\":\"error\",\"code\":\"malformed\",\"message\":\"no\"}\n");
        Wire(new OkReply("r-1") { Id = 4 }).ShouldBe("{\"type\":\"ok\",\"id\":4,\"run\":\"r-1\"}\n");
    }

    [Theory]
    [InlineData("{\"type\":\"start\",\"id\":1,\"job\":\"etl\"}")]
    [InlineData("{\"type\":\"start\",\"id\":1,\"run\":null,\"job\":\"etl\"}")]
    [InlineData("{\"type\":\"cancel\",\"id\":1,\"run\":42}")]
    [InlineData("{\"type\":\"start\",\"id\":1,\"run\":\"r\",\"job\":\"etl\",\"params\":[1]}")]
    public void A_request_missing_a_field_or_with_one_of_the_wrong_type_is_not_read(string request)
    {
        Should.Throw<JsonException>(() => JsonSerializer.Deserialize(request, ProtocolJson.Wire.CodeServerRequest));
    }
}
