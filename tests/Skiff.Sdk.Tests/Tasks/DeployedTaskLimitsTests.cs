using System.Text;
using System.Text.Json;
using Skiff.Sdk.Events;
using Skiff.Sdk.Protocol;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk.Tests.Tasks;

/// <summary>
/// What keeps a deployed task call's frames under the code server's frame limit: a larger frame would be dropped and
/// the call would never end (docs/tasks.md, "Deployed runs").
/// </summary>
public sealed class DeployedTaskLimitsTests
{
    [Fact]
    public void GatheredEvents_OverTheBudget_KeepTheFirstAndTheLast_WithAWarningSayingHowManyWereLeftOut()
    {
        var gathered = new GatheredTaskEvents("r-1", "reconstruct", budgetBytes: 16 * 1024);
        for (var i = 0; i < 1000; i++)
        {
            gathered.Add(new RunEvent { Run = "r-1", Seq = i + 1, Type = EventTypes.Log, Message = $"line {i} " + new string('x', 100) });
        }

        var kept = gathered.ToList();

        var messages = kept.Select(e => e.Message!).ToList();
        messages[0].ShouldStartWith("line 0 ");
        messages[^1].ShouldStartWith("line 999 ");
        var warning = kept.Single(e => e.Level == "warn");
        var first = kept.TakeWhile(e => e != warning).Count();
        var leftOut = 1000 - (kept.Count - 1);
        leftOut.ShouldBeGreaterThan(0);
        warning.Message.ShouldStartWith($"{leftOut} events (");
        warning.Message.ShouldContain("at most 16384 bytes");
        // The kept ones are in order, with the gap where the warning is.
        messages[first - 1].ShouldStartWith($"line {first - 1} ");
        messages[first + 1].ShouldStartWith($"line {first - 1 + leftOut + 1} ");
        // Numbered as in the task's stream (the calling run skips those it had live); the warning is none of theirs.
        kept.Where(e => e != warning).ShouldAllBe(e => e.Seq > 0);
        warning.Seq.ShouldBe(0);
        kept.Where(e => e != warning).Sum(e => JsonSerializer.SerializeToUtf8Bytes(e, ProtocolJson.Wire.RunEvent).Length).ShouldBeLessThanOrEqualTo(16 * 1024);
    }

    [Fact]
    public void GatheredEvents_UnderTheBudget_AreAllKept_WithoutAWarning()
    {
        var gathered = new GatheredTaskEvents("r-1", "reconstruct");
        for (var i = 0; i < 10; i++)
        {
            gathered.Add(new RunEvent { Run = "r-1", Seq = i + 1, Type = EventTypes.Log, Message = $"line {i}" });
        }

        gathered.ToList().Select(e => e.Message).ShouldBe(Enumerable.Range(0, 10).Select(i => $"line {i}"));
    }

    [Fact]
    public async Task ACallWithInputOverTheLimit_IsRefusedUpFront_SayingWhatToDo_AndNothingIsSent()
    {
        var sent = new List<CodeServerMessage>();
        var caller = new DeployedTaskCaller(sent.Add);
        var events = new RunEventStream("r-1", TimeProvider.System, _ => { });
        var input = Encoding.UTF8.GetBytes("\"" + new string('x', ProtocolInfo.MaxTaskPayloadBytes) + "\"");
        var call = new TaskCall(new PoolReference("meshing", null), "reconstruct", "r-1:mesh:1", input, events, "mesh", 1, null);

        var exception = await Should.ThrowAsync<TaskCallException>(() => caller.CallAsync(call, CancellationToken.None));

        exception.Message.ShouldContain($"with {input.Length} bytes of input");
        exception.Message.ShouldContain($"at most {ProtocolInfo.MaxTaskPayloadBytes} bytes");
        exception.Message.ShouldContain("Pass a reference instead");
        exception.TaskId.ShouldBeNull();
        sent.ShouldBeEmpty();
    }
}
