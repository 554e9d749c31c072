using System.Text;
using System.Text.Json;
using Skiff.Core.Messaging;

namespace Skiff.Core.Tests.Messaging;

/// <summary>The agent protocol's typed messages against docs/agent-protocol.md, through the source-generated context.</summary>
public sealed class AgentMessagesTests
{
    [Fact]
    public void Every_message_the_doc_shows_reads_as_its_record_and_writes_back_byte_for_byte()
    {
        var lines = DocumentedMessages();
        var documented = new List<string>();
        foreach (var line in lines)
        {
            var message = JsonMessages.Read(Encoding.UTF8.GetBytes(line));

            message.ShouldNotBeNull(line);
            message.ShouldNotBeOfType<UnreadableMessage>(line);
            Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(message, AgentJson.Wire.AgentMessage)).ShouldBe(line);
            documented.Add(JsonMessages.TypeOf(message));
        }

        var all = AgentJson.Wire.AgentMessage.PolymorphismOptions!.DerivedTypes.Select(d => (string)d.TypeDiscriminator!);
        documented.Order(StringComparer.Ordinal).ShouldBe(all.Order(StringComparer.Ordinal), "docs/agent-protocol.md should show each message type once");
    }

    [Fact]
    public void Messages_as_the_previous_release_wrote_them_read_the_same()
    {
        // JsonObjects with "request" last, nulls written, and (as no release wrote, but the protocol allows) "type" not first.
        var activate = JsonMessages.Read("{\"location\":\"etl\",\"type\":\"activate\",\"release\":\"sha256:ab\",\"memory_limit\":null,\"request\":7}"u8);
        var activated = JsonMessages.Read("{\"type\":\"activated\",\"request\":7,\"location\":\"etl\",\"release\":\"sha256:ab\",\"succeeded\":false,\"error\":\"no\",\"definitions\":null,\"timings_ms\":{\"fetch\":1,\"materialize\":2,\"process_start\":3,\"ready\":4,\"total\":10},\"blobs_fetched\":0}"u8);

        activate.ShouldBe(new ActivateRequest("etl", "sha256:ab") { Request = 7 });
        var reply = activated.ShouldBeOfType<ActivatedReply>();
        (reply.Request, reply.Succeeded, reply.Error, reply.Definitions, reply.TimingsMs).ShouldBe((7L, false, "no", null, new ActivationTimingsMs(1, 2, 3, 4, 10)));
    }

    [Fact]
    public void An_activated_reply_carries_the_tasks_of_a_pool_and_one_without_them_reads_as_before()
    {
        var pool = JsonMessages.Read("{\"type\":\"activated\",\"request\":8,\"location\":\"meshing\",\"release\":\"sha256:ab\",\"succeeded\":true,\"timings_ms\":{\"fetch\":1,\"materialize\":2,\"process_start\":3,\"ready\":4,\"total\":10},\"blobs_fetched\":0,\"definitions\":[],\"tasks\":[{\"name\":\"reconstruct\",\"retry\":{\"max_attempts\":3}}]}"u8);
        var plain = JsonMessages.Read("{\"type\":\"activated\",\"request\":9,\"location\":\"etl\",\"release\":\"sha256:ab\",\"succeeded\":true,\"timings_ms\":{\"fetch\":1,\"materialize\":2,\"process_start\":3,\"ready\":4,\"total\":10},\"blobs_fetched\":0,\"definitions\":[]}"u8);

        ((string?)pool.ShouldBeOfType<ActivatedReply>().Tasks.ShouldHaveSingleItem()!["name"]).ShouldBe("reconstruct");
        plain.ShouldBeOfType<ActivatedReply>().Tasks.ShouldBeNull();
    }

    [Fact]
    public void What_an_agent_could_not_read_from_its_host_may_be_left_out()
    {
        var hello = JsonMessages.Read("{\"type\":\"hello\",\"labels\":{},\"capacity\":{\"cpus\":1},\"locations\":[]}"u8).ShouldBeOfType<AgentHello>();
        var load = JsonMessages.Read("{\"type\":\"load\",\"locations\":0,\"runs\":0,\"cached_folders\":0,\"environments\":[]}"u8).ShouldBeOfType<AgentLoad>();

        (hello.Capacity, hello.Load).ShouldBe((new HostCapacity(1), null));
        (load.MemoryUsedBytes, load.CpuLoad, load.DiskFreeBytes).ShouldBe((null, null, null));
    }

    [Theory]
    [InlineData("{\"type\":\"launch\",\"request\":4}", "launch", "unknown_type", "'launch' is not a message of agent protocol 4")]
    [InlineData("{\"type\":\"cancel_run\",\"request\":4}", "cancel_run", "malformed", "the cancel_run message could not be read: ")]
    [InlineData("{\"type\":\"cancel_run\",\"request\":4,\"run\":42}", "cancel_run", "malformed", "the cancel_run message could not be read: ")]
    [InlineData("{\"request\":4,\"run\":\"r-1\"}", null, "malformed", "the message has no \"type\" string")]
    public void A_message_that_cannot_be_read_keeps_its_request_id_and_says_what_is_wrong(string json, string? type, string code, string problem)
    {
        var unreadable = JsonMessages.Read(Encoding.UTF8.GetBytes(json)).ShouldBeOfType<UnreadableMessage>();

        (unreadable.Request, unreadable.Type, unreadable.Code).ShouldBe((4L, type, code));
        unreadable.Problem.ShouldStartWith(problem);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("null")]
    public void What_is_not_a_json_object_is_no_message(string json)
    {
        JsonMessages.Read(Encoding.UTF8.GetBytes(json)).ShouldBeNull();
    }

    [Fact]
    public void A_batch_of_run_events_is_read_in_order_each_event_kept_as_its_text_with_its_seq_and_type()
    {
        var events = Enumerable.Range(1, 1000)
            .Select(seq => $"{{\"v\":1,\"seq\":{seq},\"type\":\"{(seq == 1000 ? "run_succeeded" : "log")}\",\"message\":\"line {seq} \\u00e9t\u00e9 {{\\\"nested\\\":[1,{{\\\"seq\\\":0}}]}}\",\"properties\":{{\"seq\":-1,\"type\":\"not this one\"}}}}")
            .ToList();
        var json = $"{{\"type\":\"run_events\",\"run\":\"r-1\",\"events\":[{string.Join(',', events)}]}}";

        var batch = JsonMessages.Read(Encoding.UTF8.GetBytes(json)).ShouldBeOfType<AgentRunEvents>();

        batch.Run.ShouldBe("r-1");
        batch.Events.Select(e => e.Json).ShouldBe(events, "each event's text exactly as it came, in order");
        batch.Events.Select(e => e.Seq).ShouldBe(Enumerable.Range(1, 1000).Select(s => (long?)s), "seq is the event's own, not a nested one");
        batch.Events.Count(e => e.IsEnd).ShouldBe(1);
        batch.Events[^1].Type.ShouldBe("run_succeeded");
        Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes<AgentMessage>(batch, AgentJson.Wire.AgentMessage)).ShouldBe(json);
    }

    [Theory]
    [InlineData("{\"type\":\"run_events\",\"run\":\"r-1\",\"events\":[{\"v\":1,\"seq\":1,\"type\":\"log\",\"message\":\"\\u00e9t\u00e9 \\\"q\\\" <b>\"},{\"seq\":\"2\",\"run\":7},{}]}")]
    [InlineData("{\"events\":[{\"seq\":1,\"type\":\"run_failed\",\"run\":\"r-1\"}],\"request\":12,\"run\":\"r-1\",\"type\":\"run_events\"}")]
    [InlineData("{\"type\":\"run_events\",\"run\":\"r-1\",\"events\":[],\"added_later\":{\"x\":[1]}}")]
    [InlineData(" { \"type\" : \"run_events\" , \"run\" : \"r-1\" , \"events\" : [ { \"seq\" : 3 } ] } ")]
    public void A_batch_of_run_events_reads_as_the_serializer_reads_it(string json)
    {
        // JsonMessages reads run_events in one pass of its own; whatever the field order, spacing or extra fields, the
        // result is the serializer's.
        var expected = JsonSerializer.Deserialize(json, AgentJson.Wire.AgentMessage).ShouldBeOfType<AgentRunEvents>();

        var read = JsonMessages.Read(Encoding.UTF8.GetBytes(json)).ShouldBeOfType<AgentRunEvents>();

        (read.Run, read.Request).ShouldBe((expected.Run, expected.Request));
        read.Events.Select(e => (e.Json, e.Seq, e.Type, e.Run)).ShouldBe(expected.Events.Select(e => (e.Json, e.Seq, e.Type, e.Run)));
    }

    [Theory]
    [InlineData("{\"type\":\"run_events\",\"run\":\"r-1\",\"events\":[{\"seq\":1},2]}")]
    [InlineData("{\"type\":\"run_events\",\"run\":\"r-1\",\"events\":{\"seq\":1}}")]
    [InlineData("{\"type\":\"run_events\",\"events\":[{\"seq\":1}]}")]
    public void A_batch_with_an_event_that_is_not_an_object_or_no_run_is_malformed(string json)
    {
        var unreadable = JsonMessages.Read(Encoding.UTF8.GetBytes(json)).ShouldBeOfType<UnreadableMessage>();

        (unreadable.Type, unreadable.Code).ShouldBe(("run_events", "malformed"));
    }

    [Fact]
    public void An_event_the_agent_holds_as_a_tree_is_written_as_text_with_its_seq_and_type()
    {
        var written = RunEventJson.From(new System.Text.Json.Nodes.JsonObject { ["v"] = 1, ["seq"] = 7, ["type"] = "output", ["text"] = "it's été <b>" });

        (written.Json, written.Seq, written.Type, written.IsEnd).ShouldBe(("{\"v\":1,\"seq\":7,\"type\":\"output\",\"text\":\"it's été <b>\"}", 7L, "output", false));
    }

    [Fact]
    public void An_event_read_from_a_frame_is_its_bytes_as_written_with_its_own_seq_type_and_run()
    {
        // As a code server frames it: the event's text (its escaping included) is kept, fields inside it are not its own.
        const string runEvent = """{"v":1,"seq":41,"ts":"2026-11-29T10:00:00.000+00:00","run":"r-1","type":"log","message":"été \u00e9 <b>","properties":{"seq":-1,"type":"not this one","run":"nor this"},"list":[{"seq":0}]}""";
        var frame = Encoding.UTF8.GetBytes($$"""{"type":"event","event":{{runEvent}}}""");
        var reader = new Utf8JsonReader(frame);
        while (reader.TokenType != JsonTokenType.PropertyName || !reader.ValueTextEquals("event"u8) || reader.CurrentDepth != 1)
        {
            reader.Read();
        }

        reader.Read();
        var read = RunEventJson.Read(ref reader, frame);

        (read.Json, read.Seq, read.Type, read.Run, read.IsEnd).ShouldBe((runEvent, 41L, "log", "r-1", false));
        reader.TokenType.ShouldBe(JsonTokenType.EndObject);
        reader.Read().ShouldBeTrue();
        reader.TokenType.ShouldBe(JsonTokenType.EndObject, "the reader is left on the event's end, before the frame's");
    }

    [Theory]
    [InlineData("""{"seq":"7","type":5,"run":null}""", null, null, null)]
    [InlineData("""{"\u0073eq":7,"type":"run_failed","run":"r-2"}""", 7L, "run_failed", "r-2")]
    public void An_event_read_from_bytes_takes_only_whole_numbers_and_strings_for_its_fields(string json, long? seq, string? type, string? run)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        var reader = new Utf8JsonReader(bytes);
        reader.Read();

        var read = RunEventJson.Read(ref reader, bytes);

        (read.Json, read.Seq, read.Type, read.Run).ShouldBe((json, seq, type, run));
    }

    [Fact]
    public void Bytes_that_are_not_an_event_object_are_refused()
    {
        var bytes = "[1,2]"u8.ToArray();

        Should.Throw<JsonException>(() =>
        {
            var reader = new Utf8JsonReader(bytes);
            reader.Read();
            RunEventJson.Read(ref reader, bytes);
        });
    }

    [Fact]
    public void A_load_outside_a_message_is_written_without_type_as_the_server_keeps_it()
    {
        var load = new AgentLoad(1, 0, 3, ["sha256:ab"], MemoryUsedBytes: 1024, DiskFreeBytes: 2048);

        JsonSerializer.Serialize(load, AgentJson.Wire.AgentLoad)
            .ShouldBe("{\"locations\":1,\"runs\":0,\"cached_folders\":3,\"environments\":[\"sha256:ab\"],\"memory_used_bytes\":1024,\"disk_free_bytes\":2048}");
    }

    /// <summary>The lines of the fenced block under "Every message, as sent" in docs/agent-protocol.md.</summary>
    private static List<string> DocumentedMessages()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (folder is not null && !File.Exists(Path.Combine(folder.FullName, "docs", "agent-protocol.md")))
        {
            folder = folder.Parent;
        }

        folder.ShouldNotBeNull("docs/agent-protocol.md is found above the test's folder");
        var text = File.ReadAllLines(Path.Combine(folder.FullName, "docs", "agent-protocol.md"));
        var section = Array.FindIndex(text, l => l.StartsWith("## Every message, as sent", StringComparison.Ordinal));
        section.ShouldBeGreaterThan(0, "docs/agent-protocol.md has a section \"Every message, as sent\"");
        var lines = text.Skip(section).SkipWhile(l => l != "```json").Skip(1).TakeWhile(l => l != "```").ToList();
        lines.ShouldNotBeEmpty();
        return lines;
    }
}
