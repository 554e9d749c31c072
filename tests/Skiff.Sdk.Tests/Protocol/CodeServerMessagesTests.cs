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
