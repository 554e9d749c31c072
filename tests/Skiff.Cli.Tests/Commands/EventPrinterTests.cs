using System.Text.Json.Nodes;
using Skiff.Cli.Commands;

namespace Skiff.Cli.Tests.Commands;

/// <summary>A deployed run's task events print as a local run prints them (docs/tasks.md, "Events of a call").</summary>
public sealed class EventPrinterTests
{
    [Theory]
    [InlineData("""{"type":"task_started","task_id":"r-1:mesh:1","task_attempt":1,"pin":"1a2b3c4d"}""", "mesh > meshing/reconstruct started (task r-1:mesh:1, pinned to 1a2b3c4d)")]
    [InlineData("""{"type":"task_started","task_id":"r-1:mesh:1","task_attempt":2}""", "mesh > meshing/reconstruct started (task r-1:mesh:1, attempt 2)")]
    [InlineData("""{"type":"task_started","task_id":"r-1:mesh:1","task_attempt":1,"worker":"gpu-1","release":"sha256:1a2b3c4d5e6f00112233","delivery":1}""", "mesh > meshing/reconstruct started (task r-1:mesh:1) [pool meshing @ agent gpu-1, release 1a2b3c4d5e6f]")]
    [InlineData("""{"type":"task_started","task_id":"r-1:mesh:1","task_attempt":1,"worker":"gpu-2","release":"sha256:1a2b3c4d5e6f00112233","delivery":2}""", "mesh > meshing/reconstruct started (task r-1:mesh:1) [pool meshing @ agent gpu-2, release 1a2b3c4d5e6f, delivery 2]")]
    [InlineData("""{"type":"task_started","task_id":"r-1:mesh:1","task_attempt":1,"worker":"gpu-2","release":"sha256:1a2b3c4d5e6f00112233","delivery":2,"redelivery_reason":"the previous delivery failed: agent 'gpu-1' did not run it: its code server exited"}""", "mesh > meshing/reconstruct started (task r-1:mesh:1) [pool meshing @ agent gpu-2, release 1a2b3c4d5e6f, delivery 2: the previous delivery failed: agent 'gpu-1' did not run it: its code server exited]")]
    [InlineData("""{"type":"task_retrying","task_id":"r-1:mesh:1","task_attempt":1,"error":{"type":"System.InvalidOperationException","message":"gpu busy"},"delay_ms":5000}""", "mesh > meshing/reconstruct attempt 1 failed (gpu busy); retrying in 5000 ms")]
    [InlineData("""{"type":"task_succeeded","task_id":"r-1:mesh:1","task_attempt":2,"duration_ms":812}""", "mesh > meshing/reconstruct succeeded in 812 ms")]
    [InlineData("""{"type":"task_failed","task_id":"r-1:mesh:1","task_attempt":3,"error":{"type":"System.InvalidOperationException","message":"out of memory"},"duration_ms":90}""", "mesh > meshing/reconstruct FAILED: System.InvalidOperationException: out of memory")]
    [InlineData("""{"type":"task_canceled","task_id":"r-1:mesh:1","task_attempt":1}""", "mesh > meshing/reconstruct canceled")]
    [InlineData("""{"type":"log","task_id":"r-1:mesh:1","task_attempt":1,"level":"info","message":"meshing s-1"}""", "mesh > meshing/reconstruct info  meshing s-1")]
    [InlineData("""{"type":"progress","task_id":"r-1:mesh:1","fraction":0.5,"message":"frame 2"}""", "mesh > meshing/reconstruct  50%  frame 2")]
    [InlineData("""{"type":"output","task_id":"r-1:mesh:1","task_attempt":1,"stream":"stderr","text":"warning"}""", "mesh > meshing/reconstruct stderr warning")]
    public void A_tasks_event_reads_as_in_a_local_run(string fields, string expected)
    {
        var e = JsonNode.Parse(fields)!.AsObject();
        // As the server stores and sends it: the run's fields, the calling op and the task, and fields the SDK does not know.
        foreach (var (key, value) in new Dictionary<string, JsonNode?> { ["v"] = 1, ["seq"] = 7, ["ts"] = "2026-11-29T12:00:00.000Z", ["run"] = "r-1", ["op"] = "mesh", ["attempt"] = 1, ["pool"] = "meshing", ["task"] = "reconstruct", ["agent"] = "gpu-1" })
        {
            e[key] = value;
        }

        EventPrinter.Format(e)[14..].ShouldBe(expected);
    }

    [Fact]
    public void An_ops_log_keeps_its_own_line()
    {
        var e = JsonNode.Parse("""{"v":1,"seq":3,"ts":"2026-11-29T12:00:00.000Z","run":"r-1","type":"log","op":"mesh","attempt":1,"level":"info","message":"start"}""")!.AsObject();

        EventPrinter.Format(e)[14..].ShouldBe("mesh             info  start");
    }
}
