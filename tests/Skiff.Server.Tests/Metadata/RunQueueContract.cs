using System.Text.Json.Nodes;
using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>The metadata contract for the run queue (docs/run-queue.md), run against each store by the classes below it.</summary>
public abstract class RunQueueContract : IAsyncLifetime
{
    private readonly ReleaseRecord _release = Some.Release();
    private IContractDatabase _database = null!;
    private IMetadataStore _store = null!;

    public async Task InitializeAsync()
    {
        _database = await CreateDatabaseAsync();
        _store = await _database.OpenStoreAsync();
        await Some.LiveDeploymentAsync(_store, "d-1", "app", _release);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _database.DisposeAsync();
    }

    private protected abstract Task<IContractDatabase> CreateDatabaseAsync();

    private RunRecord Requested(string id, string job = "nightly_etl", int? jobLimit = null) =>
        Some.Run(id, "app", _release, startedAt: _database.Clock.GetUtcNow(), agent: null) with { Status = RunStatuses.Queued, Job = job, JobMaxConcurrent = jobLimit };

    private async Task<IReadOnlyList<string>> QueueAsync(string id, string job = "nightly_etl", int? jobLimit = null) =>
        [.. (await _store.QueueRunAsync(Requested(id, job, jobLimit), "agent-1", CancellationToken.None)).Select(r => r.Id)];

    private async Task<string[]> RunningAsync() =>
        [.. (await _store.ListRunsAsync("app", 1000, CancellationToken.None)).Where(r => r.Status == RunStatuses.Running).Select(r => r.Id).Order(StringComparer.Ordinal)];

    private async Task<IReadOnlyList<string>> EndAsync(string id)
    {
        (await _store.CompleteRunAsync(id, RunStatuses.Succeeded, null, CancellationToken.None)).ShouldBeTrue();
        return [.. (await _store.StartQueuedRunsAsync("app", "agent-1", CancellationToken.None)).Select(r => r.Id)];
    }

    [Fact]
    public async Task A_locations_runs_not_ended_are_counted_by_the_agent_running_them_and_the_queued_apart()
    {
        var none = await _store.CountActiveRunsAsync("app", CancellationToken.None);
        await _store.SetLocationMaxConcurrentAsync("app", 3, CancellationToken.None);
        foreach (var (id, agent) in new[] { ("r-1", "agent-1"), ("r-2", "agent-2"), ("r-3", "agent-1"), ("r-4", "agent-1"), ("r-5", "agent-1") })
        {
            await _store.QueueRunAsync(Requested(id), agent, CancellationToken.None);
        }

        (await _store.CompleteRunAsync("r-1", RunStatuses.Failed, "gone", CancellationToken.None)).ShouldBeTrue();
        var counted = await _store.CountActiveRunsAsync("app", CancellationToken.None);

        none.ShouldBeEmpty();
        // r-2 and r-3 run (r-1 ended), r-4 and r-5 wait for a slot: queued runs have no agent yet.
        counted.OrderBy(r => r.Agent, StringComparer.Ordinal).ShouldBe([new ActiveRuns(null, 2), new ActiveRuns("agent-1", 1), new ActiveRuns("agent-2", 1)]);
        (await _store.CountActiveRunsAsync("other", CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Of_twenty_runs_requested_at_once_through_two_servers_no_more_start_than_the_limit_until_runs_end()
    {
        await _store.SetLocationMaxConcurrentAsync("app", 2, CancellationToken.None);
        await using var other = await _database.OpenStoreAsync();
        var stores = new[] { _store, other };

        // Task.Run: the stores' calls may finish synchronously, and would then not overlap.
        var decisions = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(() =>
            stores[i % 2].QueueRunAsync(Requested($"r-{i:D2}"), "agent-1", CancellationToken.None))));

        decisions.Sum(started => started.Count).ShouldBe(2);
        var running = await RunningAsync();
        running.ShouldBe(decisions.SelectMany(started => started.Select(r => r.Id)).Order(StringComparer.Ordinal).ToArray());
        (await _store.ListRunsAsync("app", 100, CancellationToken.None)).Count(r => r.Status == RunStatuses.Queued).ShouldBe(18);

        // Each end, with both servers trying to start the next at once, starts exactly one: never a third.
        for (var ended = 0; ended < 18; ended++)
        {
            (await _store.CompleteRunAsync(running[0], RunStatuses.Succeeded, null, CancellationToken.None)).ShouldBeTrue();
            var promoted = await Task.WhenAll(stores.Select(store => Task.Run(() => store.StartQueuedRunsAsync("app", "agent-1", CancellationToken.None))));
            promoted.Sum(started => started.Count).ShouldBe(1);
            running = await RunningAsync();
            running.Length.ShouldBe(2);
        }

        (await _store.ListLocationsWithQueuedRunsAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Queued_runs_start_in_the_order_they_were_requested_and_a_job_at_its_own_limit_holds_back_only_its_runs()
    {
        (await QueueAsync("r-1", "a", jobLimit: 1)).ShouldBe(["r-1"]);
        (await QueueAsync("r-2", "a", jobLimit: 1)).ShouldBeEmpty();
        (await QueueAsync("r-3", "a", jobLimit: 1)).ShouldBeEmpty();
        // Another job, with no limit of its own, is not held back by job a's queue.
        (await QueueAsync("r-4", "b")).ShouldBe(["r-4"]);
        (await _store.ListLocationsWithQueuedRunsAsync(CancellationToken.None)).ShouldBe(["app"]);

        (await EndAsync("r-1")).ShouldBe(["r-2"]);
        (await EndAsync("r-4")).ShouldBeEmpty();
        (await EndAsync("r-2")).ShouldBe(["r-3"]);

        // A location limit of 1: the head of the queue goes first, whatever its job.
        await _store.SetLocationMaxConcurrentAsync("app", 1, CancellationToken.None);
        (await QueueAsync("r-5", "b")).ShouldBeEmpty();
        (await QueueAsync("r-6", "a", jobLimit: 1)).ShouldBeEmpty();
        (await QueueAsync("r-7", "b")).ShouldBeEmpty();
        (await EndAsync("r-3")).ShouldBe(["r-5"]);
        (await EndAsync("r-5")).ShouldBe(["r-6"]);
        (await EndAsync("r-6")).ShouldBe(["r-7"]);
    }

    [Fact]
    public async Task A_run_canceled_while_queued_ends_canceled_with_one_end_event_and_never_starts()
    {
        await _store.SetLocationMaxConcurrentAsync("app", 1, CancellationToken.None);
        await QueueAsync("r-1");
        await QueueAsync("r-2");
        await QueueAsync("r-3");
        _database.Clock.Advance(TimeSpan.FromSeconds(3));

        (await _store.CancelQueuedRunAsync("r-2", "canceled while queued", (run, seq) => $$"""{"seq":{{seq}},"type":"run_canceled","job":"{{run.Job}}"}""", CancellationToken.None)).ShouldBeTrue();

        var canceled = (await _store.GetRunAsync("r-2", CancellationToken.None)).ShouldNotBeNull();
        canceled.Status.ShouldBe(RunStatuses.Canceled);
        canceled.Reason.ShouldBe("canceled while queued");
        canceled.Agent.ShouldBeNull();
        canceled.FinishedAt.ShouldBe(_database.Clock.GetUtcNow());
        canceled.QueueWait.ShouldBe(TimeSpan.FromSeconds(3));
        var events = await _store.GetRunEventsAsync("r-2", 0, 10, CancellationToken.None);
        events.ShouldHaveSingleItem().Seq.ShouldBe(1);
        JsonNode.Parse(events[0].Json)!["type"]!.GetValue<string>().ShouldBe("run_canceled");

        // Only a queued run is canceled this way: not again, not a running one.
        (await _store.CancelQueuedRunAsync("r-2", "again", (_, _) => "{}", CancellationToken.None)).ShouldBeFalse();
        (await _store.CancelQueuedRunAsync("r-1", "running", (_, _) => "{}", CancellationToken.None)).ShouldBeFalse();
        (await _store.GetRunAsync("r-1", CancellationToken.None))!.Status.ShouldBe(RunStatuses.Running);
        await Should.ThrowAsync<MetadataNotFoundException>(() => _store.CancelQueuedRunAsync("r-nope", "x", (_, _) => "{}", CancellationToken.None));

        (await EndAsync("r-1")).ShouldBe(["r-3"]);
    }

    [Fact]
    public async Task Raising_or_clearing_the_location_limit_lets_queued_runs_start_and_it_is_kept_across_deploys()
    {
        await _store.SetLocationMaxConcurrentAsync("app", 1, CancellationToken.None);
        foreach (var id in new[] { "r-1", "r-2", "r-3", "r-4", "r-5" })
        {
            await QueueAsync(id);
        }

        await _store.SetLocationMaxConcurrentAsync("app", 3, CancellationToken.None);
        (await _store.StartQueuedRunsAsync("app", "agent-2", CancellationToken.None)).Select(r => (r.Id, r.Agent)).ShouldBe([("r-2", "agent-2"), ("r-3", "agent-2")]);

        // A deploy keeps the limit; runs that start after it run the release live then.
        var next = Some.Release("next");
        await Some.LiveDeploymentAsync(_store, "d-2", "app", next);
        (await _store.GetLocationAsync("app", CancellationToken.None))!.MaxConcurrent.ShouldBe(3);
        (await _store.ListLocationsAsync(CancellationToken.None)).ShouldHaveSingleItem().MaxConcurrent.ShouldBe(3);

        await _store.SetLocationMaxConcurrentAsync("app", null, CancellationToken.None);
        var started = await _store.StartQueuedRunsAsync("app", "agent-1", CancellationToken.None);
        started.Select(r => r.Id).ShouldBe(["r-4", "r-5"]);
        started.ShouldAllBe(r => r.Release == next.Id && r.Status == RunStatuses.Running);
        (await _store.GetLocationAsync("app", CancellationToken.None))!.MaxConcurrent.ShouldBeNull();
    }

    [Fact]
    public async Task A_run_records_when_it_was_requested_and_how_long_it_waited()
    {
        await _store.SetLocationMaxConcurrentAsync("app", 1, CancellationToken.None);
        var requestedAt = _database.Clock.GetUtcNow();
        await QueueAsync("r-1");
        await QueueAsync("r-2");
        var waiting = (await _store.GetRunAsync("r-2", CancellationToken.None))!;
        waiting.Status.ShouldBe(RunStatuses.Queued);
        waiting.QueuedAt.ShouldBe(requestedAt);
        waiting.QueueWait.ShouldBeNull();

        _database.Clock.Advance(TimeSpan.FromMilliseconds(2500));
        await EndAsync("r-1");

        var started = (await _store.GetRunAsync("r-2", CancellationToken.None))!;
        started.Status.ShouldBe(RunStatuses.Running);
        started.StartedAt.ShouldBe(requestedAt + TimeSpan.FromMilliseconds(2500));
        started.QueueWait.ShouldBe(TimeSpan.FromMilliseconds(2500));
        started.Agent.ShouldBe("agent-1");
        (await _store.GetRunAsync("r-1", CancellationToken.None))!.QueueWait.ShouldBe(TimeSpan.Zero);
        // A run started with no limit never queued.
        await _store.CreateRunAsync(Some.Run("r-free", "app", _release), CancellationToken.None);
        (await _store.GetRunAsync("r-free", CancellationToken.None))!.QueueWait.ShouldBeNull();
    }

    [Fact]
    public async Task A_limit_below_one_or_for_an_unknown_location_is_refused_and_changes_nothing()
    {
        await _store.SetLocationMaxConcurrentAsync("app", 2, CancellationToken.None);

        await Should.ThrowAsync<ArgumentOutOfRangeException>(() => _store.SetLocationMaxConcurrentAsync("app", 0, CancellationToken.None));
        await Should.ThrowAsync<ArgumentOutOfRangeException>(() => _store.SetLocationMaxConcurrentAsync("app", -1, CancellationToken.None));
        var unknown = await Should.ThrowAsync<MetadataNotFoundException>(() => _store.SetLocationMaxConcurrentAsync("nowhere", 2, CancellationToken.None));
        unknown.Message.ShouldContain("nowhere");
        await Should.ThrowAsync<MetadataNotFoundException>(() => _store.QueueRunAsync(Requested("r-1") with { Location = "nowhere" }, "agent-1", CancellationToken.None));

        (await _store.GetLocationAsync("app", CancellationToken.None))!.MaxConcurrent.ShouldBe(2);
        (await _store.GetLocationAsync("nowhere", CancellationToken.None)).ShouldBeNull();
    }
}

public sealed class SqliteRunQueueTests : RunQueueContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresRunQueueTests(PostgresServer server) : RunQueueContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
