using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Skiff.Sdk.Definitions;
using Skiff.Sdk.Protocol;

namespace Skiff.Sdk.Tests.Protocol;

/// <summary>
/// The code server in this process, over a real Unix socket pair: what an agent sends and what it gets
/// back, message by message (docs/code-server-protocol.md).
/// </summary>
public sealed class CodeServerInProcessTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Hello_IsTheFirstMessage()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var hello = await agent.NextAsync();

        hello.ToJsonString().ShouldBe(
            $$"""{"type":"hello","protocol":1,"sdk":"{{ProtocolInfo.SdkVersion}}","pid":{{Environment.ProcessId}},"jobs":3}""");
    }

    [Fact]
    public async Task Health_IsAnswered_WithTheRequestId()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var reply = await agent.RequestAsync("""{"type":"health","id":41}""");

        reply.ToJsonString().ShouldBe("""{"type":"health","id":41,"status":"ok","runs":0}""");
    }

    [Fact]
    public async Task List_ReturnsTheDefinitions()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var reply = await agent.RequestAsync("""{"type":"list","id":7}""");

        reply["type"]!.GetValue<string>().ShouldBe("definitions");
        reply["id"]!.GetValue<int>().ShouldBe(7);
        var jobs = reply["jobs"]!.AsArray();
        jobs.Select(j => (string?)j!["name"]).ShouldBe(["hello", "long", "broken"]);
        jobs[0]!["parameters"]!.ToJsonString().ShouldBe(
            """[{"name":"name","type":"string","required":false,"default":"world","description":"who to greet"}]""");
        jobs[1]!["ops"]!.ToJsonString().ShouldBe(
            """[{"name":"wait","depends_on":[],"max_attempts":1},{"name":"after","depends_on":["wait"],"max_attempts":1}]""");
    }

    [Fact]
    public async Task List_OfAVersionThatDeclaresTasks_ReportsThemBesideTheJobs()
    {
        var catalog = new JobCatalog();
        catalog.Job("hello").Run(_ => Task.CompletedTask);
        catalog.Task("reconstruct", (TaskContext _, string scan) => Task.FromResult(scan.Length), new RetryPolicy(4, TimeSpan.FromSeconds(1)), "Builds a mesh");
        await using var agent = await Agent.ConnectAsync(catalog.Build(), catalog.BuildTasks());

        var reply = await agent.RequestAsync("""{"type":"list","id":8}""");

        reply["jobs"]!.AsArray().Select(j => (string?)j!["name"]).ShouldBe(["hello"]);
        reply["tasks"]!.ToJsonString().ShouldBe(
            """[{"name":"reconstruct","description":"Builds a mesh","input_type":"System.String","output_type":"System.Int32","input_schema":{"type":["string","null"]},"output_schema":{"type":"integer"},"retry":{"max_attempts":4,"initial_delay_ms":1000,"backoff_multiplier":2,"max_delay_ms":300000}}]""");
    }

    [Fact]
    public async Task List_OfAVersionWithoutTasks_LeavesTasksOut()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var reply = await agent.RequestAsync("""{"type":"list","id":9}""");

        reply.ContainsKey("tasks").ShouldBeFalse();
    }

    [Fact]
    public async Task Start_RepliesStarted_ThenStreamsTheRunsEvents_EndingWithATerminalEvent()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var started = await agent.RequestAsync("""{"type":"start","id":1,"run":"r-1","job":"hello","params":{"name":"Ada"},"release":"sha256:abc"}""");
        await agent.EventAsync("r-1", "run_succeeded");

        started.ToJsonString().ShouldBe("""{"type":"started","id":1,"run":"r-1"}""");
        var events = agent.Events("r-1");
        events.Select(e => (string?)e["type"]).ShouldBe(["run_started", "op_started", "log", "op_succeeded", "run_succeeded"]);
        events.Select(e => (long)e["seq"]!).ShouldBe([1, 2, 3, 4, 5]);
        events.ShouldAllBe(e => (int)e["v"]! == 1 && (string?)e["run"] == "r-1");
        ((string?)events[0]["release"]).ShouldBe("sha256:abc");
        events[0]["parameters"]!.ToJsonString().ShouldBe("""{"name":"Ada"}""");
        ((string?)events[2]["message"]).ShouldBe("Hello, Ada!");
        agent.Received.IndexOf(started).ShouldBeLessThan(agent.Received.FindIndex(m => (string?)m["type"] == "event"));
    }

    [Fact]
    public async Task Start_AFailingJob_EndsWithRunFailed()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        await agent.RequestAsync("""{"type":"start","id":1,"run":"r-1","job":"broken"}""");
        var failed = await agent.EventAsync("r-1", "run_failed");

        ((string?)failed["reason"]).ShouldBe("op 'broken' failed: disk full");
        ((string?)agent.Events("r-1").Single(e => (string?)e["type"] == "op_failed")["error"]!["type"]).ShouldBe("System.InvalidOperationException");
    }

    [Fact]
    public async Task Start_UnknownJob_IsAnErrorNamingTheJobs_AndTheServerKeepsServing()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var error = await agent.RequestAsync("""{"type":"start","id":1,"run":"r-1","job":"nope"}""");
        var health = await agent.RequestAsync("""{"type":"health","id":2}""");

        ((string?)error["type"]).ShouldBe("error");
        ((int?)error["id"]).ShouldBe(1);
        ((string?)error["code"]).ShouldBe("unknown_job");
        ((string?)error["message"]).ShouldBe("this version defines no job 'nope'; it defines: broken, hello, long");
        ((string?)health["status"]).ShouldBe("ok");
    }

    [Fact]
    public async Task Start_WithBadParameters_IsAnErrorNamingThem()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var error = await agent.RequestAsync("""{"type":"start","id":1,"run":"r-1","job":"hello","params":{"name":5,"extra":true}}""");

        ((string?)error["code"]).ShouldBe("bad_parameters");
        error["message"]!.GetValue<string>().ShouldContain("'extra'");
        error["message"]!.GetValue<string>().ShouldContain("parameter 'name' must be a string; got 5");
        agent.Events("r-1").ShouldBeEmpty();
    }

    [Theory]
    [InlineData("""{"type":"start","id":1,"job":"hello"}""")]
    [InlineData("""{"type":"start","id":1,"run":"","job":"hello"}""")]
    [InlineData("""{"type":"start","id":1,"run":"r-1"}""")]
    public async Task Start_WithoutRunOrJob_IsMalformed(string request)
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var error = await agent.RequestAsync(request);

        ((string?)error["code"]).ShouldBe("malformed");
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("[1,2]")]
    [InlineData("\"health\"")]
    public async Task ARequestThatIsNotAJsonObject_IsMalformed_AndTheServerKeepsServing(string request)
    {
        await using var agent = await Agent.ConnectAsync(Jobs());
        await agent.NextAsync();

        await agent.SendAsync(request);
        var error = await agent.NextAsync();
        var health = await agent.RequestAsync("""{"type":"health","id":2}""");

        ((string?)error["type"]).ShouldBe("error");
        ((string?)error["code"]).ShouldBe("malformed");
        error["id"].ShouldBeNull();
        ((string?)health["status"]).ShouldBe("ok");
    }

    [Fact]
    public async Task ARequestWithoutAType_IsMalformed()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var error = await agent.RequestAsync("""{"id":3}""");

        ((int?)error["id"]).ShouldBe(3);
        ((string?)error["code"]).ShouldBe("malformed");
        ((string?)error["message"]).ShouldBe("the request has no \"type\"");
    }

    [Fact]
    public async Task ARequestWhoseTypeIsNotItsFirstField_IsMalformed_SayingSo()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var error = await agent.RequestAsync("""{"id":5,"type":"health"}""");

        ((int?)error["id"]).ShouldBe(5);
        ((string?)error["code"]).ShouldBe("malformed");
        ((string?)error["message"]).ShouldBe("\"type\" must be the first field of a request; this health request starts with \"id\"");
    }

    [Fact]
    public async Task AnUnknownRequestType_IsAnError_AndTheServerKeepsServing()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var error = await agent.RequestAsync("""{"type":"reticulate","id":3}""");
        var health = await agent.RequestAsync("""{"type":"health","id":4}""");

        ((string?)error["code"]).ShouldBe("unknown_type");
        error["message"]!.GetValue<string>().ShouldContain("'reticulate'");
        ((string?)health["status"]).ShouldBe("ok");
    }

    [Fact]
    public async Task AFrameOverOneMebibyte_IsRefused_AndTheServerKeepsServing()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());
        await agent.NextAsync();

        await agent.SendAsync("""{"type":"health","id":"big","pad":""" + "\"" + new string('x', ProtocolInfo.MaxFrameBytes) + "\"}");
        var error = await agent.NextAsync();
        var health = await agent.RequestAsync("""{"type":"health","id":2}""");

        ((string?)error["code"]).ShouldBe("frame_too_large");
        error["id"].ShouldBeNull();
        ((string?)health["status"]).ShouldBe("ok");
    }

    [Fact]
    public async Task RunTask_WithOutputOverTheLimit_FailsTheTask_SayingWhatToDo()
    {
        var catalog = new JobCatalog();
        catalog.Job("hello").Run(_ => Task.CompletedTask);
        catalog.Task("reconstruct", (TaskContext _, string scan) => Task.FromResult(new string('x', ProtocolInfo.MaxTaskPayloadBytes)));
        await using var agent = await Agent.ConnectAsync(catalog.Build(), catalog.BuildTasks());

        var reply = await agent.RequestAsync("""{"type":"run_task","id":6,"call":"r-1:mesh:1/1","task_id":"r-1:mesh:1","pool":"meshing","task":"reconstruct","run":"r-1","op":"mesh","attempt":1,"input":"scan"}""");

        ((string?)reply["type"]).ShouldBe("task_done");
        var outcome = reply["outcome"]!;
        ((bool)outcome["succeeded"]!).ShouldBeFalse();
        ((string?)outcome["error"]!["message"])!.ShouldContain($"returned {ProtocolInfo.MaxTaskPayloadBytes + 2} bytes of output; a deployed task's output can be at most {ProtocolInfo.MaxTaskPayloadBytes} bytes (512 KiB). Store large results elsewhere");
        // One clear failure in the events the calling run gets: never a success first.
        var types = outcome["events"]!.AsArray().Select(e => (string?)e!["type"]).Where(t => t!.StartsWith("task_", StringComparison.Ordinal)).ToList();
        types.ShouldBe(["task_started", "task_failed"]);
    }

    [Fact]
    public async Task RunTask_NamingItsWorker_SendsTheTasksEventsAsTheyHappen_AttributedToTheWorker_BeforeItsReply()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var catalog = new JobCatalog();
        catalog.Job("hello").Run(_ => Task.CompletedTask);
        catalog.Task("reconstruct", async (TaskContext context, string scan) =>
        {
            context.Logger.LogInformation("meshing {Scan}", scan);
            await gate.Task.WaitAsync(context.CancellationToken);
            return scan.Length;
        });
        await using var agent = await Agent.ConnectAsync(catalog.Build(), catalog.BuildTasks());

        await agent.SendAsync("""{"type":"run_task","id":6,"call":"r-1:mesh:1/1","task_id":"r-1:mesh:1","pool":"meshing","task":"reconstruct","run":"r-1","op":"mesh","attempt":1,"input":"scan","release":"sha256:1a2b","worker":"gpu-1","delivery":2}""");
        // While the task waits for the test: its log line has come already.
        var live = await agent.WaitForAsync(m => (string?)m["type"] == "task_events" && m["events"]!.AsArray().Any(e => (string?)e!["message"] == "meshing scan"), "the task's log line, live");
        gate.SetResult();
        var reply = await agent.ReplyAsync(6);

        ((string?)live["call"]).ShouldBe("r-1:mesh:1/1");
        var log = live["events"]!.AsArray().Single(e => (string?)e!["type"] == "log")!;
        ((string?)log["worker"]).ShouldBe("gpu-1");
        ((string?)log["release"]).ShouldBe("sha256:1a2b");
        ((int?)log["delivery"]).ShouldBe(2);
        ((string?)log["pool"]).ShouldBe("meshing");
        ((string?)reply["type"]).ShouldBe("task_done");
        // Every event came live before the reply, and the reply carries them again under the same numbers.
        var sentLive = agent.Received.TakeWhile(m => m != reply).Where(m => (string?)m["type"] == "task_events").SelectMany(m => m["events"]!.AsArray()).Select(e => ((string?)e!["type"], (long)e["seq"]!)).ToList();
        var inReply = reply["outcome"]!["events"]!.AsArray().Select(e => ((string?)e!["type"], (long)e["seq"]!)).ToList();
        sentLive.ShouldBe(inReply);
        sentLive.Select(e => e.Item1).ShouldBe(["task_started", "log", "task_succeeded"]);
    }

    [Fact]
    public async Task RunTask_ThatLogsTenThousandLinesAtOnce_SendsThemLiveInOrderInBatches_WithoutHoldingItUp()
    {
        var catalog = new JobCatalog();
        catalog.Job("hello").Run(_ => Task.CompletedTask);
        catalog.Task("reconstruct", (TaskContext context, string scan) =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                context.Logger.LogInformation("line {Line}", i);
            }

            return Task.FromResult(scan.Length);
        });
        await using var agent = await Agent.ConnectAsync(catalog.Build(), catalog.BuildTasks());

        var reply = await agent.RequestAsync("""{"type":"run_task","id":6,"call":"r-1:mesh:1/1","task_id":"r-1:mesh:1","pool":"meshing","task":"reconstruct","run":"r-1","op":"mesh","attempt":1,"input":"scan","worker":"gpu-1","delivery":1}""");

        ((bool)reply["outcome"]!["succeeded"]!).ShouldBeTrue();
        var batches = agent.Received.TakeWhile(m => m != reply).Where(m => (string?)m["type"] == "task_events").Select(m => m["events"]!.AsArray()).ToList();
        batches.ShouldAllBe(b => b.Count >= 1 && b.Count <= 500);
        // In order and none twice, from the first; the task waited for none of them, so those beyond what may wait were
        // left out of the live stream, and the reply still ends with how the task ended.
        var seqs = batches.SelectMany(b => b).Select(e => (long)e!["seq"]!).ToList();
        seqs[0].ShouldBe(1);
        seqs.Zip(seqs.Skip(1)).All(pair => pair.Second > pair.First).ShouldBeTrue("the live events' numbers rise");
        seqs.Count.ShouldBeGreaterThanOrEqualTo(Skiff.Sdk.Tasks.LiveTaskEvents.MaxQueued);
        ((string?)reply["outcome"]!["events"]!.AsArray()[^1]!["type"]).ShouldBe("task_succeeded");
    }

    [Fact]
    public async Task RunTask_NamingNoWorker_SendsItsEventsWithItsReplyOnly()
    {
        var catalog = new JobCatalog();
        catalog.Job("hello").Run(_ => Task.CompletedTask);
        catalog.Task("reconstruct", (TaskContext context, string scan) => Task.FromResult(scan.Length));
        await using var agent = await Agent.ConnectAsync(catalog.Build(), catalog.BuildTasks());

        var reply = await agent.RequestAsync("""{"type":"run_task","id":6,"call":"r-1:mesh:1/1","task_id":"r-1:mesh:1","pool":"meshing","task":"reconstruct","run":"r-1","op":"mesh","attempt":1,"input":"scan"}""");

        reply["outcome"]!["events"]!.AsArray().Count.ShouldBe(2);
        agent.Received.ShouldNotContain(m => (string?)m["type"] == "task_events");
    }

    [Fact]
    public async Task RunTask_ThatLogsMoreThanAFrameHolds_AnswersWithinTheFrameLimit_SayingHowManyEventsWereLeftOut()
    {
        var catalog = new JobCatalog();
        catalog.Job("hello").Run(_ => Task.CompletedTask);
        catalog.Task("reconstruct", (TaskContext context, string scan) =>
        {
            for (var i = 0; i < 4000; i++)
            {
                context.Logger.LogInformation("line {Line} {Padding}", i, new string('x', 400));
            }

            return Task.FromResult(scan.Length);
        });
        await using var agent = await Agent.ConnectAsync(catalog.Build(), catalog.BuildTasks());

        var reply = await agent.RequestAsync("""{"type":"run_task","id":6,"call":"r-1:mesh:1/1","task_id":"r-1:mesh:1","pool":"meshing","task":"reconstruct","run":"r-1","op":"mesh","attempt":1,"input":"scan"}""");

        Encoding.UTF8.GetByteCount(reply.ToJsonString()).ShouldBeLessThan(ProtocolInfo.MaxFrameBytes);
        var outcome = reply["outcome"]!;
        ((bool)outcome["succeeded"]!).ShouldBeTrue();
        ((int)outcome["output"]!).ShouldBe(4);
        var events = outcome["events"]!.AsArray();
        events.ShouldContain(e => (string?)e!["level"] == "warn" && ((string?)e["message"])!.Contains("were left out here"));
        // How the task ended is kept.
        ((string?)events[^1]!["type"]).ShouldBe("task_succeeded");
    }

    [Fact]
    public async Task Cancel_ARunningRun_EndsItCanceled()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());
        await agent.RequestAsync("""{"type":"start","id":1,"run":"r-1","job":"long"}""");
        await agent.EventAsync("r-1", "op_started");

        var ok = await agent.RequestAsync("""{"type":"cancel","id":2,"run":"r-1"}""");
        await agent.EventAsync("r-1", "run_canceled");

        ok.ToJsonString().ShouldBe("""{"type":"ok","id":2,"run":"r-1"}""");
        agent.Events("r-1").Select(e => (string?)e["type"]).ShouldBe(["run_started", "op_started", "op_canceled", "op_skipped", "run_canceled"]);
        var health = await agent.RequestAsync("""{"type":"health","id":3}""");
        ((int)health["runs"]!).ShouldBe(0);
    }

    [Fact]
    public async Task Cancel_AnUnknownRun_IsAnError()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var error = await agent.RequestAsync("""{"type":"cancel","id":2,"run":"r-9"}""");

        ((string?)error["code"]).ShouldBe("unknown_run");
        error["message"]!.GetValue<string>().ShouldContain("r-9");
    }

    [Fact]
    public async Task Start_WithTheIdOfARunningRun_IsRefused()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());
        await agent.RequestAsync("""{"type":"start","id":1,"run":"r-1","job":"long"}""");

        var error = await agent.RequestAsync("""{"type":"start","id":2,"run":"r-1","job":"hello"}""");
        var health = await agent.RequestAsync("""{"type":"health","id":3}""");

        ((string?)error["code"]).ShouldBe("duplicate_run");
        ((int)health["runs"]!).ShouldBe(1);
        agent.Events("r-1").ShouldAllBe(e => (string?)e["job"] == null || (string?)e["job"] == "long");
    }

    [Fact]
    public async Task Shutdown_WithARunPastTheGracePeriod_CancelsIt_RepliesOk_AndEnds()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());
        await agent.RequestAsync("""{"type":"start","id":1,"run":"r-1","job":"long"}""");
        await agent.EventAsync("r-1", "op_started");

        var ok = await agent.RequestAsync("""{"type":"shutdown","id":2,"grace_ms":50}""");

        ok.ToJsonString().ShouldBe("""{"type":"ok","id":2}""");
        var canceledAt = agent.Received.FindIndex(m => (string?)m["event"]?["type"] == "run_canceled");
        canceledAt.ShouldBeGreaterThanOrEqualTo(0);
        canceledAt.ShouldBeLessThan(agent.Received.IndexOf(ok));
        (await agent.ServedAsync()).ShouldBe(0);
        await agent.ClosedAsync();
    }

    [Fact]
    public async Task Shutdown_LetsRunsFinishWithinTheGracePeriod_AndTakesNoNewOnes()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var agent = await Agent.ConnectAsync(Jobs(gate.Task));
        await agent.RequestAsync("""{"type":"start","id":1,"run":"r-1","job":"gated"}""");
        await agent.EventAsync("r-1", "op_started");

        await agent.SendAsync("""{"type":"shutdown","id":2,"grace_ms":60000}""");
        var refused = await agent.RequestAsync("""{"type":"start","id":3,"run":"r-2","job":"hello"}""");
        gate.SetResult();
        var ok = await agent.ReplyAsync(2);

        ((string?)refused["code"]).ShouldBe("shutting_down");
        ((string?)agent.Events("r-1")[^1]["type"]).ShouldBe("run_succeeded");
        ((string?)ok["type"]).ShouldBe("ok");
        (await agent.ServedAsync()).ShouldBe(0);
    }

    [Fact]
    public async Task Shutdown_WithNothingRunning_RepliesOkAndEnds()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var ok = await agent.RequestAsync("""{"type":"shutdown","id":1}""");

        ((string?)ok["type"]).ShouldBe("ok");
        (await agent.ServedAsync()).ShouldBe(0);
    }

    [Fact]
    public async Task TheAgentClosingItsSide_CancelsRunningRuns_AndEndsServing()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());
        await agent.RequestAsync("""{"type":"start","id":1,"run":"r-1","job":"long"}""");
        await agent.EventAsync("r-1", "op_started");

        agent.StopSending();

        (await agent.ServedAsync()).ShouldBe(0);
        await agent.ClosedAsync();
        ((string?)agent.Events("r-1")[^1]["type"]).ShouldBe("run_canceled");
        agent.Events("r-1").ShouldContain(e => (string?)e["type"] == "op_canceled");
    }

    [Fact]
    public async Task TheAgentGoingAway_CancelsRunningRuns_AndEndsServing()
    {
        var canceled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var agent = await Agent.ConnectAsync(Jobs(observedCancel: canceled));
        await agent.RequestAsync("""{"type":"start","id":1,"run":"r-1","job":"long"}""");
        await agent.EventAsync("r-1", "op_started");

        agent.Disconnect();

        (await agent.ServedAsync()).ShouldBe(0);
        await canceled.Task.WaitAsync(Deadline);
    }

    [Theory]
    [InlineData("""{"type":"start","id":1,"run":42,"job":"hello"}""")]
    [InlineData("""{"type":"start","id":1,"run":"r-1","job":{"name":"hello"}}""")]
    [InlineData("""{"type":"cancel","id":1,"run":42}""")]
    public async Task ARequestWithAFieldOfTheWrongType_IsMalformed_AndTheServerKeepsServing(string request)
    {
        await using var agent = await Agent.ConnectAsync(Jobs());

        var error = await agent.RequestAsync(request);
        var health = await agent.RequestAsync("""{"type":"health","id":2}""");

        ((string?)error["code"]).ShouldBe("malformed");
        ((string?)health["status"]).ShouldBe("ok");
    }

    [Fact]
    public async Task ARequestThatIsNotUtf8_IsMalformed_AndTheServerKeepsServing()
    {
        await using var agent = await Agent.ConnectAsync(Jobs());
        await agent.NextAsync();

        await agent.SendBytesAsync([.. """{"type":"hea"""u8, 0xFF, .. "\"}\n"u8]);
        var error = await agent.NextAsync();
        var health = await agent.RequestAsync("""{"type":"health","id":2}""");

        ((string?)error["type"]).ShouldBe("error");
        ((string?)error["code"]).ShouldBe("malformed");
        ((string?)health["status"]).ShouldBe("ok");
    }

    private static IReadOnlyList<JobDefinition> Jobs(Task? gate = null, TaskCompletionSource? observedCancel = null)
    {
        var catalog = new JobCatalog();
        catalog.Job("hello").Parameter("name", "world", "who to greet").Run(context =>
        {
            context.Logger.LogInformation("Hello, {Name}!", context.Parameters.Get<string>("name"));
            return Task.CompletedTask;
        });
        catalog.Job("long")
            .Op("wait", async context =>
            {
                using var registration = context.CancellationToken.Register(() => observedCancel?.TrySetResult());
                await Task.Delay(Timeout.Infinite, context.CancellationToken);
            })
            .Op("after", _ => Task.CompletedTask, dependsOn: ["wait"]);
        catalog.Job("broken").Run(_ => throw new InvalidOperationException("disk full"));
        if (gate is not null)
        {
            catalog.Job("gated").Run(context => gate.WaitAsync(context.CancellationToken));
        }

        return catalog.Build();
    }

    /// <summary>
    /// The agent's end of the connection: sends request lines, and collects every message the server
    /// writes, with waits for the one a test is after. Fails fast with the server's exception if it stops.
    /// </summary>
    private sealed class Agent : IAsyncDisposable
    {
        private readonly Lock _gate = new();
        private readonly List<JsonObject> _received = [];
        private readonly DirectoryInfo _directory;
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly Task<int> _served;
        private readonly Task _reading;
        private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _cursor;
        private bool _closed;

        private Agent(DirectoryInfo directory, Socket socket, Task<int> served)
        {
            _directory = directory;
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: false);
            _served = served;
            _reading = Task.Run(ReadLoopAsync);
        }

        public List<JsonObject> Received
        {
            get
            {
                lock (_gate)
                {
                    return [.. _received];
                }
            }
        }

        public static async Task<Agent> ConnectAsync(IReadOnlyList<JobDefinition> jobs, IReadOnlyList<TaskDefinition>? tasks = null)
        {
            var directory = Directory.CreateTempSubdirectory("skiff-cs-");
            var endpoint = new UnixDomainSocketEndPoint(Path.Combine(directory.FullName, "agent.sock"));
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(endpoint);
            listener.Listen(1);
            var agentSide = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            var accepting = listener.AcceptAsync();
            await agentSide.ConnectAsync(endpoint);
            var serverSide = await accepting;
            var served = Task.Run(async () =>
            {
                await using var stream = new NetworkStream(serverSide, ownsSocket: true);
                return await new CodeServer(jobs, TimeProvider.System, tasks).ServeAsync(stream, CancellationToken.None);
            });
            return new Agent(directory, agentSide, served);
        }

        public Task SendAsync(string line) => SendBytesAsync(Encoding.UTF8.GetBytes(line + "\n"));

        public async Task SendBytesAsync(byte[] bytes)
        {
            using var deadline = new CancellationTokenSource(Deadline);
            await _stream.WriteAsync(bytes, deadline.Token);
        }

        /// <summary>Sends a request and waits for the reply carrying its id.</summary>
        public async Task<JsonObject> RequestAsync(string request)
        {
            var id = JsonNode.Parse(request)!["id"]!.ToJsonString();
            await SendAsync(request);
            return await WaitForAsync(m => m["id"]?.ToJsonString() == id && (string?)m["type"] != "event", $"a reply to {request}");
        }

        public Task<JsonObject> ReplyAsync(int id) =>
            WaitForAsync(m => m["id"]?.ToJsonString() == id.ToString(System.Globalization.CultureInfo.InvariantCulture), $"a reply with id {id}");

        /// <summary>The next message not yet taken by <see cref="NextAsync"/>, in order.</summary>
        public async Task<JsonObject> NextAsync()
        {
            var index = _cursor;
            var message = await WaitForAsync(_ => true, "the next message", startAt: index);
            _cursor = Received.IndexOf(message) + 1;
            return message;
        }

        public async Task<JsonObject> EventAsync(string run, string type) =>
            (JsonObject)(await WaitForAsync(m => m["event"] is JsonObject e && (string?)e["run"] == run && (string?)e["type"] == type, $"a {type} event of {run}"))["event"]!;

        public List<JsonObject> Events(string run) =>
            [.. Received.Select(m => m["event"]).OfType<JsonObject>().Where(e => (string?)e["run"] == run)];

        public Task<int> ServedAsync() => _served.WaitAsync(Deadline);

        public Task ClosedAsync() => _reading.WaitAsync(Deadline);

        /// <summary>Half-closes: the server reads the end of its input but can still write.</summary>
        public void StopSending() => _socket.Shutdown(SocketShutdown.Send);

        public void Disconnect() => _socket.Close();

        public async ValueTask DisposeAsync()
        {
            _socket.Dispose();
            await _stream.DisposeAsync();
            await Task.WhenAny(_served, Task.Delay(Deadline));
            await Task.WhenAny(_reading, Task.Delay(Deadline));
            _directory.Delete(recursive: true);
        }

        public async Task<JsonObject> WaitForAsync(Func<JsonObject, bool> match, string what, int startAt = 0)
        {
            var deadline = DateTime.UtcNow + Deadline;
            while (true)
            {
                Task arrived;
                lock (_gate)
                {
                    if (_received.Skip(startAt).FirstOrDefault(match) is { } found)
                    {
                        return found;
                    }

                    if (_closed)
                    {
                        throw new ShouldAssertException($"the connection closed before {what}.\n{Describe()}");
                    }

                    arrived = _arrived.Task;
                }

                var remaining = deadline - DateTime.UtcNow;
                if (remaining <= TimeSpan.Zero || await Task.WhenAny(arrived, Task.Delay(remaining)) != arrived)
                {
                    throw new TimeoutException($"no {what} within {Deadline}.\n{Describe()}");
                }
            }
        }

        private string Describe()
        {
            var server = _served.IsFaulted ? $"the server failed: {_served.Exception!.InnerException}" : $"server task: {_served.Status}";
            return $"{server}\nreceived:\n{string.Join('\n', Received.Select(m => m.ToJsonString()))}";
        }

        private async Task ReadLoopAsync()
        {
            try
            {
                using var reader = new StreamReader(_stream, Encoding.UTF8, leaveOpen: true);
                while (await reader.ReadLineAsync() is { } line)
                {
                    Arrive(JsonNode.Parse(line)!.AsObject());
                }
            }
            catch (Exception exception) when (exception is IOException or ObjectDisposedException)
            {
                // Disconnect() or dispose closed our side.
            }
            finally
            {
                lock (_gate)
                {
                    _closed = true;
                }

                Arrive(null);
            }
        }

        private void Arrive(JsonObject? message)
        {
            TaskCompletionSource arrived;
            lock (_gate)
            {
                if (message is not null)
                {
                    _received.Add(message);
                }

                arrived = _arrived;
                _arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            arrived.SetResult();
        }
    }
}
