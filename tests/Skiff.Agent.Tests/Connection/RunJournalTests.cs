using System.Text.Json.Nodes;
using Skiff.Agent.Connection;
using Skiff.Core.Messaging;

namespace Skiff.Agent.Tests.Connection;

/// <summary>How the agent sends a run's events in batches (<see cref="AgentRunEvents"/>), and sends again what a dropped connection lost.</summary>
public sealed class RunJournalTests
{
    [Fact]
    public async Task A_flood_goes_out_in_batches_of_at_most_a_thousand_consecutive_events_and_a_lone_event_at_once()
    {
        var journal = new RunJournal("r-1", connection: 1);
        var sent = new List<IReadOnlyList<RunEventJson>>();

        await journal.AppendAsync([.. Events(1, 2500)], current: 1, Collect(sent));
        await journal.AppendAsync([Event(2501, "run_succeeded")], current: 1, Collect(sent));

        sent.Select(b => b.Count).ShouldBe([1000, 1000, 500, 1]);
        sent.SelectMany(b => b).Select(e => e.Seq).ShouldBe(Enumerable.Range(1, 2501).Select(s => (long?)s), "every event once, in order");
        sent[^1].Single().IsEnd.ShouldBeTrue();
        journal.Ended.ShouldBeTrue();
    }

    [Fact]
    public async Task Large_events_make_smaller_batches_and_one_larger_than_a_batch_goes_alone()
    {
        var journal = new RunJournal("r-1", connection: 1);
        var sent = new List<IReadOnlyList<RunEventJson>>();
        var line = new string('x', 300 * 1024);

        await journal.AppendAsync([.. Events(1, 7, line), Event(8, "log", new string('y', 2 * AgentRunEvents.MaxBytes))], current: 1, Collect(sent));

        sent.Select(b => b.Count).ShouldBe([3, 3, 1, 1]);
        sent.SelectMany(b => b).Select(e => e.Seq).ShouldBe(Enumerable.Range(1, 8).Select(s => (long?)s));
    }

    [Fact]
    public async Task After_a_dropped_connection_nothing_goes_out_until_the_resume_which_sends_the_rest_in_order()
    {
        var journal = new RunJournal("r-1", connection: 1);
        var sent = new List<IReadOnlyList<RunEventJson>>();
        var batches = 0;

        // The second batch does not go out: the connection dropped under it.
        await journal.AppendAsync([.. Events(1, 1500)], current: 1, (events, _) => Task.FromResult(++batches == 1 && Add(sent, events)));
        await journal.AppendAsync([.. Events(1501, 1600)], current: 1, Collect(sent));
        sent.SelectMany(b => b).Select(e => e.Seq).ShouldBe(Enumerable.Range(1, 1000).Select(s => (long?)s), "nothing after the failed send on the old connection");

        // The server stored through 900 (the rest of the first batch was still queued there when it died).
        sent.Clear();
        await journal.ResumeAsync(storedThrough: 900, current: 2, Collect(sent));
        await journal.AppendAsync([Event(1601, "run_succeeded")], current: 2, Collect(sent));

        sent.Select(b => b.Count).ShouldBe([700, 1]);
        sent.SelectMany(b => b).Select(e => e.Seq).ShouldBe(Enumerable.Range(901, 701).Select(s => (long?)s));
    }

    private static Func<IReadOnlyList<RunEventJson>, long, Task<bool>> Collect(List<IReadOnlyList<RunEventJson>> sent) =>
        (events, _) => Task.FromResult(Add(sent, events));

    private static bool Add(List<IReadOnlyList<RunEventJson>> sent, IReadOnlyList<RunEventJson> events)
    {
        sent.Add([.. events]);
        return true;
    }

    private static IEnumerable<RunEventJson> Events(int from, int to, string message = "working") =>
        Enumerable.Range(from, to - from + 1).Select(seq => Event(seq, "log", message));

    private static RunEventJson Event(long seq, string type, string message = "done") =>
        RunEventJson.From(new JsonObject { ["v"] = 1, ["seq"] = seq, ["run"] = "r-1", ["type"] = type, ["message"] = message });
}
