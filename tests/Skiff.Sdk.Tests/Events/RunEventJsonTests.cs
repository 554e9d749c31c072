using System.Text.Json;
using Skiff.Sdk.Events;

namespace Skiff.Sdk.Tests.Events;

/// <summary>
/// The JSON form of events, the same on every channel (protocol, <c>run --json</c>, agent logs):
/// snake_case keys, <c>"v":1</c> first, fields that do not apply left out, dictionary keys as given.
/// </summary>
public sealed class RunEventJsonTests
{
    private static readonly DateTimeOffset Ts = new(2025, 1, 2, 3, 4, 5, 678, TimeSpan.Zero);

    [Fact]
    public void ARetryEvent_SerializesToItsDocumentedShape()
    {
        var e = new RunEvent
        {
            Seq = 4,
            Ts = Ts,
            Run = "run-1",
            Type = EventTypes.OpRetrying,
            Op = "load",
            Attempt = 1,
            Error = new ErrorInfo("System.IO.IOException", "disk busy", null),
            DelayMs = 1500,
        };

        JsonSerializer.Serialize(e, SdkJson.Options).ShouldBe(
            """{"v":1,"seq":4,"ts":"2025-01-02T03:04:05.678+00:00","run":"run-1","type":"op_retrying","op":"load","attempt":1,"error":{"type":"System.IO.IOException","message":"disk busy"},"delay_ms":1500}""");
    }

    [Fact]
    public void ALogEvent_KeepsPropertyNamesAsWritten()
    {
        var e = new RunEvent
        {
            Seq = 7,
            Ts = Ts,
            Run = "run-1",
            Type = EventTypes.Log,
            Op = "load",
            Attempt = 2,
            Level = "info",
            Message = "Loaded 5 rows from t",
            Properties = SdkJson.ToElements([new("Rows", 5), new("Table", "t"), new("MaxRows", null)]),
        };

        JsonSerializer.Serialize(e, SdkJson.Options).ShouldBe(
            """{"v":1,"seq":7,"ts":"2025-01-02T03:04:05.678+00:00","run":"run-1","type":"log","op":"load","attempt":2,"level":"info","message":"Loaded 5 rows from t","properties":{"Rows":5,"Table":"t","MaxRows":null}}""");
    }

    [Fact]
    public void RunStartedAndEnded_SerializeToTheirDocumentedShapes()
    {
        var started = new RunEvent
        {
            Seq = 1,
            Ts = Ts,
            Run = "run-1",
            Type = EventTypes.RunStarted,
            Job = "etl",
            Release = "sha256:ab",
            Parameters = SdkJson.ToElements([new("rows", 10L), new("dry_run", false)]),
        };
        var failed = new RunEvent { Seq = 9, Ts = Ts, Run = "run-1", Type = EventTypes.RunFailed, Job = "etl", DurationMs = 1234, Reason = "op 'load' failed: boom" };

        JsonSerializer.Serialize(started, SdkJson.Options).ShouldBe(
            """{"v":1,"seq":1,"ts":"2025-01-02T03:04:05.678+00:00","run":"run-1","type":"run_started","job":"etl","release":"sha256:ab","parameters":{"rows":10,"dry_run":false}}""");
        JsonSerializer.Serialize(failed, SdkJson.Options).ShouldBe(
            """{"v":1,"seq":9,"ts":"2025-01-02T03:04:05.678+00:00","run":"run-1","type":"run_failed","job":"etl","duration_ms":1234,"reason":"op 'load' failed: boom"}""");
    }

    [Fact]
    public void Text_IsNotEscapedBeyondWhatJsonRequires()
    {
        var e = new RunEvent { Ts = Ts, Run = "r", Type = EventTypes.Log, Message = "Grüße <b> & \"q\"\n" };

        JsonSerializer.Serialize(e, SdkJson.Options).ShouldContain("""
            "message":"Grüße <b> & \"q\"\n"
            """);
    }

    [Fact]
    public void AnEvent_RoundTripsThroughJson()
    {
        var e = new RunEvent
        {
            Seq = 3,
            Ts = Ts,
            Run = "run-1",
            Type = EventTypes.Metadata,
            Op = "load",
            Metadata = SdkJson.ToElements([new("files", new[] { "a", "b" })]),
        };
        var json = JsonSerializer.Serialize(e, SdkJson.Options);

        var back = JsonSerializer.Deserialize<RunEvent>(json, SdkJson.Options)!;

        JsonSerializer.Serialize(back, SdkJson.Options).ShouldBe(json);
        back.V.ShouldBe(RunEvent.FormatVersion);
    }

    [Fact]
    public void Line_IsCompactJsonEndingInOneNewline()
    {
        var bytes = SdkJson.Line(new { Type = "health", RunCount = 2 });

        System.Text.Encoding.UTF8.GetString(bytes).ShouldBe("{\"type\":\"health\",\"run_count\":2}\n");
    }

    [Fact]
    public void ToElement_FallsBackToTextForWhatCannotBeSerialized()
    {
        SdkJson.ToElement(typeof(string)).GetString().ShouldBe("System.String");
        SdkJson.ToElement(null).ValueKind.ShouldBe(JsonValueKind.Null);
        SdkJson.ToElement(new { A = 1 }).GetRawText().ShouldBe("""{"a":1}""");
    }

    [Fact]
    public void ErrorInfo_From_KeepsTypeMessageAndFullText()
    {
        Exception exception;
        try
        {
            throw new InvalidOperationException("outer", new IOException("inner"));
        }
        catch (InvalidOperationException caught)
        {
            exception = caught;
        }

        var error = ErrorInfo.From(exception);

        error.Type.ShouldBe("System.InvalidOperationException");
        error.Message.ShouldBe("outer");
        error.Stack.ShouldNotBeNull();
        error.Stack.ShouldContain("System.IO.IOException: inner");
        error.Stack.ShouldContain(nameof(ErrorInfo_From_KeepsTypeMessageAndFullText));
    }
}
