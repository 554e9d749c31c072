using Skiff.Sdk.Events;
using Skiff.Sdk.Protocol;
using Skiff.Sdk.Tasks;

namespace Skiff.Sdk.Tests.Tasks;

/// <summary>
/// A deployed call's task events in the calling run (docs/tasks.md, "Live events"): emitted as they come while the task
/// runs, with the worker's time and attributed to the calling op; the result's copy of them is not emitted again.
/// </summary>
public sealed class DeployedTaskCallerTests
{
    private static readonly DateTimeOffset OnTheWorker = new(2026, 11, 29, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task LiveEvents_AreEmittedAsTheyCome_AndTheResultAddsOnlyThoseThatDidNotCome()
    {
        var (caller, emitted, calling, callId) = Call();
        caller.Relay(new TaskEventsNotice(callId, [TaskEvent(1, EventTypes.TaskStarted, delivery: 1), TaskEvent(2, EventTypes.Log, delivery: 1, "first")]));

        // In the calling run before the task has ended, with the worker's time, attributed to the calling op.
        emitted.Select(e => e.Type).ShouldBe([EventTypes.TaskStarted, EventTypes.Log]);
        emitted.ShouldAllBe(e => e.Op == "mesh" && e.Attempt == 1 && e.Ts == OnTheWorker && e.Worker == "gpu-1" && e.Delivery == 1);
        emitted.Select(e => e.Seq).ShouldBe([1L, 2L]);

        // The result brings every event again; only the one that did not come live is emitted.
        caller.Complete(new TaskResultNotice(callId, new TaskOutcome(true, System.Text.Json.Nodes.JsonValue.Create(4),
            Events: [TaskEvent(1, EventTypes.TaskStarted, delivery: 1), TaskEvent(2, EventTypes.Log, delivery: 1, "first"), TaskEvent(3, EventTypes.TaskSucceeded, delivery: 1)])));
        await calling.WaitAsync(TimeSpan.FromSeconds(60));

        emitted.Select(e => e.Type).ShouldBe([EventTypes.TaskStarted, EventTypes.Log, EventTypes.TaskSucceeded]);
        // Late ones of a call that has ended are let go.
        caller.Relay(new TaskEventsNotice(callId, [TaskEvent(4, EventTypes.Log, delivery: 1, "late")]));
        emitted.Count.ShouldBe(3);
    }

    [Fact]
    public async Task EventsOfAnEarlierDelivery_Stay_AndTheNextDeliverysAreEmittedBesideThem()
    {
        var (caller, emitted, calling, callId) = Call();
        // The first worker died after its start and a line; the second delivery numbers its events from 1 again.
        caller.Relay(new TaskEventsNotice(callId, [TaskEvent(1, EventTypes.TaskStarted, delivery: 1), TaskEvent(2, EventTypes.Log, delivery: 1, "first try")]));
        caller.Relay(new TaskEventsNotice(callId, [TaskEvent(1, EventTypes.TaskStarted, delivery: 2)]));
        caller.Complete(new TaskResultNotice(callId, new TaskOutcome(true, System.Text.Json.Nodes.JsonValue.Create(4),
            Events: [TaskEvent(1, EventTypes.TaskStarted, delivery: 2), TaskEvent(2, EventTypes.TaskSucceeded, delivery: 2)])));
        await calling.WaitAsync(TimeSpan.FromSeconds(60));

        emitted.Select(e => (e.Type, e.Delivery)).ShouldBe([(EventTypes.TaskStarted, 1), (EventTypes.Log, 1), (EventTypes.TaskStarted, 2), (EventTypes.TaskSucceeded, 2)]);
    }

    [Fact]
    public async Task EventsLeftOutOfTheLiveStream_AreMarkedOnce_AndTheResultsWarningCountsOnlyThoseThatReachedTheRunNeitherWay()
    {
        var (caller, emitted, calling, callId) = Call();
        // Under load, 3 and 4 were left out on the way, and later 7.
        caller.Relay(new TaskEventsNotice(callId, [TaskEvent(1, EventTypes.TaskStarted, delivery: 1), TaskEvent(2, EventTypes.Log, delivery: 1, "2")]));
        caller.Relay(new TaskEventsNotice(callId, [TaskEvent(5, EventTypes.Log, delivery: 1, "5"), TaskEvent(6, EventTypes.Log, delivery: 1, "6")]));
        caller.Relay(new TaskEventsNotice(callId, [TaskEvent(8, EventTypes.Log, delivery: 1, "8")]));

        // One marker, where the first gap is, with its count.
        var marker = emitted.Where(e => e.Seq != 0 && e.Level == "warn").ShouldHaveSingleItem();
        emitted.IndexOf(marker).ShouldBe(2);
        marker.Message.ShouldStartWith("2 events of task 'reconstruct' of pool 'meshing' were left out of the live stream here");
        marker.Message.ShouldContain("They come with the task's result");
        (marker.Pool, marker.Task, marker.Op).ShouldBe(("meshing", "reconstruct", "mesh"));

        // The result kept 1–3 and 9–10 and left 4–8 out, which its worker's warning counts; 5, 6 and 8 came live, though.
        var workersWarning = new RunEvent { Run = "r-1", Seq = 0, Type = EventTypes.Log, Level = "warn", Message = "5 events (900 bytes) of task 'reconstruct' were left out here" };
        caller.Complete(new TaskResultNotice(callId, new TaskOutcome(true, System.Text.Json.Nodes.JsonValue.Create(4), Events:
            [TaskEvent(1, EventTypes.TaskStarted, delivery: 1), TaskEvent(2, EventTypes.Log, delivery: 1, "2"), TaskEvent(3, EventTypes.Log, delivery: 1, "3"), workersWarning,
             TaskEvent(9, EventTypes.Log, delivery: 1, "9"), TaskEvent(10, EventTypes.TaskSucceeded, delivery: 1)])));
        await calling.WaitAsync(TimeSpan.FromSeconds(60));

        var warnings = emitted.Where(e => e.Level == "warn").Select(e => e.Message!).ToList();
        warnings.Count.ShouldBe(2);
        warnings[1].ShouldStartWith("2 events of task 'reconstruct' of pool 'meshing' reached this run neither live nor with its result");
        emitted.Where(e => e.Level != "warn").Select(e => e.Message ?? e.Type).ShouldBe([EventTypes.TaskStarted, "2", "5", "6", "8", "3", "9", EventTypes.TaskSucceeded]);
    }

    [Fact]
    public async Task TheResultsWarning_IsLeftOut_WhenEveryEventItLeftOutCameLive()
    {
        var (caller, emitted, calling, callId) = Call();
        caller.Relay(new TaskEventsNotice(callId, [.. Enumerable.Range(1, 4).Select(n => TaskEvent(n, EventTypes.Log, delivery: 1, $"{n}"))]));
        var workersWarning = new RunEvent { Run = "r-1", Seq = 0, Type = EventTypes.Log, Level = "warn", Message = "2 events (300 bytes) of task 'reconstruct' were left out here" };
        caller.Complete(new TaskResultNotice(callId, new TaskOutcome(true, System.Text.Json.Nodes.JsonValue.Create(4), Events:
            [TaskEvent(1, EventTypes.Log, delivery: 1, "1"), workersWarning, TaskEvent(4, EventTypes.Log, delivery: 1, "4"), TaskEvent(5, EventTypes.TaskSucceeded, delivery: 1)])));
        await calling.WaitAsync(TimeSpan.FromSeconds(60));

        emitted.ShouldNotContain(e => e.Level == "warn");
        emitted.Select(e => e.Seq).ShouldBe([1L, 2L, 3L, 4L, 5L]);
    }

    /// <summary>A call of <c>reconstruct</c> on <c>meshing</c> by op <c>mesh</c>, waiting: its caller, the calling run's events, the wait and the call's id.</summary>
    private static (DeployedTaskCaller Caller, List<RunEvent> Emitted, Task<byte[]> Calling, string CallId) Call()
    {
        var sent = new List<CodeServerMessage>();
        var caller = new DeployedTaskCaller(m => { lock (sent) { sent.Add(m); } });
        var emitted = new List<RunEvent>();
        var events = new RunEventStream("r-1", TimeProvider.System, e => { lock (emitted) { emitted.Add(e); } });
        var call = new TaskCall(new PoolReference("meshing", null), "reconstruct", "r-1:mesh:1", "\"scan\""u8.ToArray(), events, "mesh", 1, null);
        var calling = caller.CallAsync(call, CancellationToken.None);
        return (caller, emitted, calling, sent.OfType<CallTaskMessage>().Single().Call);
    }

    private static RunEvent TaskEvent(long seq, string type, int delivery, string? message = null) => new()
    {
        Run = "r-1",
        Seq = seq,
        Ts = OnTheWorker,
        Type = type,
        Op = "mesh",
        Attempt = 1,
        Message = message,
        Level = message is null ? null : "info",
        Pool = "meshing",
        Task = "reconstruct",
        TaskId = "r-1:mesh:1",
        TaskAttempt = 1,
        Worker = "gpu-1",
        Release = "sha256:1a2b",
        Delivery = delivery,
    };
}
