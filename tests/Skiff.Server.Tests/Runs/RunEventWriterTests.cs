using System.Text.Json.Nodes;
using Skiff.Server.Coordination;
using Skiff.Server.Metadata;
using Skiff.Server.Runs;
using Skiff.Server.Tests.Metadata;

namespace Skiff.Server.Tests.Runs;

/// <summary>How agents' run events are stored in batches by one writer (<see cref="RunEventWriter"/>), on a real SQLite file.</summary>
public sealed class RunEventWriterTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly TestDatabase _database = new();
    private readonly CancellationTokenSource _stopping = new();
    private IMetadataStore _store = null!;
    private RunService _runs = null!;

    public async Task InitializeAsync()
    {
        _store = await _database.OpenAsync();
        var release = Some.Release();
        await Some.LiveDeploymentAsync(_store, "d1", "analytics", release);
        await _store.CreateRunAsync(Some.Run("r1", "analytics", release), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("r2", "analytics", release), CancellationToken.None);

        // The in-process bus has no backstop: a follower wakes only when the writer signals it.
        _runs = new RunService(_store, new InProcessServerBus("server-1"), _database.Clock, eventBatchSize: 500, _stopping.Token);
    }

    public async Task DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _store.DisposeAsync();
        _database.Dispose();
        _stopping.Dispose();
    }

    [Fact]
    public async Task A_flood_of_events_is_stored_in_order_the_follower_ends_with_the_run_and_the_end_is_acknowledged_only_once_committed()
    {
        const int Lines = 5000;
        var follower = FollowAsync("r1");
        var acknowledged = new TaskCompletionSource<(string Status, long Events)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var acknowledgements = 0;
        var unknownAcknowledged = 0;

        for (var seq = 1; seq <= Lines; seq++)
        {
            await _runs.AppendEventAsync("r1", Log(seq), null, CancellationToken.None);
            if (seq % 1000 == 0)
            {
                // Another run's events and one of a run no store knows go through the same queue without harm.
                await _runs.AppendEventAsync("r2", Log(seq / 1000), null, CancellationToken.None);
                await _runs.AppendEventAsync("nope", End(1), () => Task.FromResult(Interlocked.Increment(ref unknownAcknowledged)), CancellationToken.None);
            }
        }

        await _runs.AppendEventAsync("r1", End(Lines + 1), async () =>
        {
            Interlocked.Increment(ref acknowledgements);
            var run = await _store.GetRunAsync("r1", CancellationToken.None);
            var events = (await _store.GetRunEventsAsync("r1", Lines, 10, CancellationToken.None)).Count;
            acknowledged.TrySetResult((run!.Status, Lines + events));
        }, CancellationToken.None);
        await _runs.AppendEventAsync("r1", Log(Lines + 2), null, CancellationToken.None);

        var (status, storedAtAcknowledgement) = await acknowledged.Task.WaitAsync(Deadline);
        var followed = await follower.WaitAsync(Deadline);

        status.ShouldBe(RunStatuses.Succeeded);
        storedAtAcknowledgement.ShouldBe(Lines + 1);
        acknowledgements.ShouldBe(1);
        unknownAcknowledged.ShouldBe(0, "the end of a run no store knows is not acknowledged");
        followed.ShouldBe(Enumerable.Range(1, Lines + 1).Select(s => (long)s).ToList(), "every event once, in order, ending with the run's end and nothing after it");
        (await _store.GetRunEventsAsync("r2", 0, 100, CancellationToken.None)).Select(e => e.Seq).ShouldBe([1L, 2L, 3L, 4L, 5L]);
    }

    [Fact]
    public async Task Followers_that_join_mid_run_get_every_event_once_in_order_whether_read_from_the_store_or_as_stored()
    {
        const int Lines = 6000;
        var early = FollowAsync("r1");
        for (var seq = 1; seq <= 2500; seq++)
        {
            await _runs.AppendEventAsync("r1", Log(seq), null, CancellationToken.None);
        }

        // Joins with events stored before it and more being stored: reads the store, then takes what is committed.
        var late = FollowAsync("r1");
        for (var seq = 2501; seq <= Lines; seq++)
        {
            await _runs.AppendEventAsync("r1", Log(seq), null, CancellationToken.None);
        }

        await _runs.AppendEventAsync("r1", End(Lines + 1), null, CancellationToken.None);

        var expected = Enumerable.Range(1, Lines + 1).Select(s => (long)s).ToList();
        (await early.WaitAsync(Deadline)).ShouldBe(expected);
        (await late.WaitAsync(Deadline)).ShouldBe(expected);
    }

    [Fact]
    public async Task Events_of_an_ended_run_and_events_sent_again_are_ignored_and_its_end_sent_again_is_acknowledged_again()
    {
        var acknowledged = Channel();
        await _runs.AppendEventAsync("r1", Log(1), null, CancellationToken.None);
        await _runs.AppendEventAsync("r1", End(2), () => acknowledged.Writer.WriteAsync("first").AsTask(), CancellationToken.None);
        (await acknowledged.Reader.ReadAsync().AsTask().WaitAsync(Deadline)).ShouldBe("first");

        // As after a reconnect that found the end not yet stored: the agent sends it all again.
        await _runs.AppendEventAsync("r1", Log(1), null, CancellationToken.None);
        await _runs.AppendEventAsync("r1", Log(3), null, CancellationToken.None);
        await _runs.AppendEventAsync("r1", End(2), () => acknowledged.Writer.WriteAsync("again").AsTask(), CancellationToken.None);

        (await acknowledged.Reader.ReadAsync().AsTask().WaitAsync(Deadline)).ShouldBe("again");
        (await _store.GetRunEventsAsync("r1", 0, 100, CancellationToken.None)).Select(e => e.Seq).ShouldBe([1L, 2L]);
    }

    private async Task<List<long>> FollowAsync(string runId)
    {
        var seqs = new List<long>();
        await foreach (var (seq, _) in _runs.ReadAsync(runId, 0, follow: true, CancellationToken.None))
        {
            seqs.Add(seq);
        }

        return seqs;
    }

    private static System.Threading.Channels.Channel<string> Channel() => System.Threading.Channels.Channel.CreateUnbounded<string>();

    private static JsonObject Log(long seq) => new() { ["v"] = 1, ["seq"] = seq, ["type"] = "log", ["message"] = $"line {seq}" };

    private static JsonObject End(long seq) => new() { ["v"] = 1, ["seq"] = seq, ["type"] = "run_succeeded" };
}
