using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Skiff.Agent.Connection;
using Skiff.Core.Messaging;

namespace Skiff.Agent.Tests.Connection;

/// <summary>
/// An agent keeps the outcome of a task it ran until the server says the result is recorded (docs/tasks.md, "Nothing
/// lost"): a connection that goes between the answer and its recording, or before the answer, does not make the task run
/// a second time. Against a server that sends what it likes, with the test app's <c>double</c> task on a real code server.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class KeptTaskOutcomeTests(Releases releases)
{
    private const string Call = "r-1:double:1/1";

    [Fact]
    public async Task A_task_whose_result_was_not_recorded_is_sent_again_after_the_next_hello_and_not_run_again_when_handed_out_again()
    {
        using var deadline = new CancellationTokenSource(AgentHarness.Deadline);
        await using var harness = new AgentHarness(releases);
        (await harness.ActivateAsync("testapp", releases.V1)).Succeeded.ShouldBeTrue();
        using var listener = ServerConnectionTests.Listen(out var url);
        using var stopAgent = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
        var agent = new ServerConnection(harness.Agent, url, "token", "gpu-1", TimeProvider.System).RunAsync(stopAgent.Token);
        try
        {
            // The task runs and is answered, and the connection goes before the server records it (the server died).
            var (first, firstMessages) = await AcceptAsync(listener, deadline.Token);
            await JsonMessages.SendAsync(first, RunTask(request: 1, delivery: 1), deadline.Token);
            var answered = await ReplyAsync(firstMessages, 1);
            first.Abort();
            first.Dispose();

            // Back: what it kept comes after the hello, and the call handed out again is answered from the first run.
            var (second, secondMessages) = await AcceptAsync(listener, deadline.Token);
            await JsonMessages.SendAsync(second, RunTask(request: 2, delivery: 2), deadline.Token);
            var before = new List<AgentMessage>();
            var again = await ReplyAsync(secondMessages, 2, before);

            var kept = before.OfType<AgentTaskDone>().ShouldHaveSingleItem();
            (kept.Call, kept.Pool, kept.Delivery, kept.Request).ShouldBe((Call, "testapp", 1, (long?)null));
            kept.Outcome.ToJsonString().ShouldBe(answered.Outcome.ToJsonString());
            ((int)answered.Outcome["output"]!).ShouldBe(42);
            Deliveries(again).ShouldBe([1]);

            // Recorded: forgotten, so a later delivery of the call (a caller's retry under the same id) runs it.
            await JsonMessages.SendAsync(second, new AgentTaskRecorded(Call), deadline.Token);
            await JsonMessages.SendAsync(second, RunTask(request: 3, delivery: 3), deadline.Token);
            Deliveries(await ReplyAsync(secondMessages, 3)).ShouldBe([3]);
        }
        finally
        {
            await stopAgent.CancelAsync();
            await agent;
        }
    }

    private static AgentRunTask RunTask(long request, int delivery) =>
        new(Call, "r-1:double:1", "testapp", "double", "r-1", "double", 1, delivery, JsonValue.Create(21)) { Request = request };

    /// <summary>The deliveries the outcome's events were stamped with: which run of the task it is.</summary>
    private static List<int> Deliveries(AgentTaskDone done) =>
        done.Outcome["events"]!.AsArray().Select(e => (int?)e!["delivery"]).OfType<int>().Distinct().ToList();

    /// <summary>The next connection of the agent, once it said hello.</summary>
    private static async Task<(WebSocket Socket, IAsyncEnumerator<AgentMessage> Messages)> AcceptAsync(System.Net.HttpListener listener, CancellationToken cancellationToken)
    {
        var context = await listener.GetContextAsync().WaitAsync(cancellationToken);
        var socket = (await context.AcceptWebSocketAsync(subProtocol: null)).WebSocket;
        var messages = JsonMessages.ReadAsync(socket, cancellationToken).GetAsyncEnumerator(cancellationToken);
        (await ServerConnectionTests.NextAsync(messages)).ShouldBeOfType<AgentHello>();
        return (socket, messages);
    }

    /// <summary>The agent's answer to a run_task, keeping what came before it (live task events left out).</summary>
    private static async Task<AgentTaskDone> ReplyAsync(IAsyncEnumerator<AgentMessage> messages, long request, List<AgentMessage>? before = null)
    {
        while (true)
        {
            var message = await ServerConnectionTests.NextAsync(messages);
            if (message.Request == request)
            {
                return message.ShouldBeOfType<AgentTaskDone>();
            }

            if (message is not AgentTaskEvents)
            {
                before?.Add(message);
            }
        }
    }
}
