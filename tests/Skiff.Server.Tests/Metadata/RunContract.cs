using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>The metadata contract for runs, run against each store by the classes below it.</summary>
public abstract class RunContract : IAsyncLifetime
{
    private IContractDatabase _database = null!;
    private readonly ReleaseRecord _release = Some.Release();
    private IMetadataStore _store = null!;

    public async Task InitializeAsync()
    {
        _database = await CreateDatabaseAsync();
        _store = await _database.OpenStoreAsync();
        await Some.LiveDeploymentAsync(_store, "d1", "analytics", _release);
        await _store.CreateDeploymentAsync(Some.Deployment("d2", "reports", _release), CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _database.DisposeAsync();
    }

    private protected abstract Task<IContractDatabase> CreateDatabaseAsync();

    [Fact]
    public async Task CreateRun_RoundTrips()
    {
        var run = Some.Run("r1", "analytics", _release);

        await _store.CreateRunAsync(run, CancellationToken.None);

        (await _store.GetRunAsync("r1", CancellationToken.None)).ShouldBe(run);
        (await _store.GetRunAsync("nope", CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task CreateRun_OnALocationNeverDeployedTo_IsRefused()
    {
        var missing = await Should.ThrowAsync<MetadataNotFoundException>(
            _store.CreateRunAsync(Some.Run("r1", "nowhere", _release), CancellationToken.None));

        missing.Kind.ShouldBe("location");
        missing.Id.ShouldBe("nowhere");
    }

    [Fact]
    public async Task CreateRun_WithAnIdAlreadyUsed_IsRefused()
    {
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release), CancellationToken.None);

        await Should.ThrowAsync<MetadataConflictException>(
            _store.CreateRunAsync(Some.Run("r1", "reports", _release), CancellationToken.None));
    }

    [Fact]
    public async Task AppendRunEvent_SameSeqAgain_KeepsTheFirst_AndEventsPageBySeq()
    {
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("r2", "analytics", _release), CancellationToken.None);
        for (var seq = 1; seq <= 5; seq++)
        {
            await _store.AppendRunEventAsync("r1", seq, $$"""{"n":{{seq}}}""", CancellationToken.None);
        }

        await _store.AppendRunEventAsync("r1", 3, """{"n":"resent"}""", CancellationToken.None);
        await _store.AppendRunEventAsync("r2", 1, """{"other":true}""", CancellationToken.None);

        (await _store.GetRunEventsAsync("r1", 0, 100, CancellationToken.None)).ShouldBe(
            [.. Enumerable.Range(1, 5).Select(seq => new RunEventRecord(seq, $$"""{"n":{{seq}}}"""))]);
        (await _store.GetRunEventsAsync("r1", 0, 2, CancellationToken.None)).Select(e => e.Seq).ShouldBe([1L, 2L]);
        (await _store.GetRunEventsAsync("r1", 2, 2, CancellationToken.None)).Select(e => e.Seq).ShouldBe([3L, 4L]);
        (await _store.GetRunEventsAsync("r1", 4, 2, CancellationToken.None)).Select(e => e.Seq).ShouldBe([5L]);
        (await _store.GetRunEventsAsync("r1", 5, 2, CancellationToken.None)).ShouldBeEmpty();
        (await _store.GetRunEventsAsync("unknown", 0, 2, CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task FailRun_StoresItsEventAfterEveryStoredOne_AndNoEventLandsAfterTheEnd()
    {
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release), CancellationToken.None);
        (await _store.AppendRunEventAsync("r1", 1, """{"n":1}""", CancellationToken.None)).ShouldBeTrue();
        (await _store.AppendRunEventAsync("r1", 2, """{"n":2}""", CancellationToken.None)).ShouldBeTrue();
        (await _store.AppendRunEventAsync("r1", 2, """{"n":"resent"}""", CancellationToken.None)).ShouldBeFalse();
        _database.Clock.Advance(TimeSpan.FromSeconds(30));

        var failed = await _store.FailRunAsync("r1", "agent gone", (run, seq) => $$"""{"end":{{seq}},"status":"{{run.Status}}","took":{{(run.FinishedAt!.Value - run.StartedAt).TotalSeconds}}}""", CancellationToken.None);
        var late = await _store.AppendRunEventAsync("r1", 3, """{"n":3}""", CancellationToken.None);
        var again = await _store.FailRunAsync("r1", "twice", (_, _) => throw new InvalidOperationException("not called for an ended run"), CancellationToken.None);

        failed.ShouldBeTrue();
        late.ShouldBeFalse("an event of an ended run is not stored");
        again.ShouldBeFalse();
        (await _store.GetRunEventsAsync("r1", 0, 100, CancellationToken.None)).ShouldBe(
            [new RunEventRecord(1, """{"n":1}"""), new RunEventRecord(2, """{"n":2}"""), new RunEventRecord(3, """{"end":3,"status":"failed","took":30}""")]);
        var stored = (await _store.GetRunAsync("r1", CancellationToken.None))!;
        (stored.Status, stored.Reason).ShouldBe((RunStatuses.Failed, "agent gone"));
        await Should.ThrowAsync<MetadataNotFoundException>(_store.FailRunAsync("nope", "x", (_, _) => "{}", CancellationToken.None));
    }

    [Fact]
    public async Task AppendRunEvents_KeepsEachEventsRules_EndsTheRunInTheSameBatch_AndAnUnknownRunFailsNothing()
    {
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("r2", "analytics", _release), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("r3", "reports", _release), CancellationToken.None);
        await _store.AppendRunEventAsync("r1", 1, """{"n":1}""", CancellationToken.None);
        await _store.CompleteRunAsync("r2", RunStatuses.Canceled, "asked", CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromSeconds(5));

        var outcomes = await _store.AppendRunEventsAsync(
            [
                new("r1", 1, """{"n":"resent"}"""),
                new("r1", 2, """{"n":2}"""),
                new("nope", 1, """{"n":"lost"}"""),
                new("r2", 1, """{"n":"late"}"""),
                new("r3", 1, """{"m":1}"""),
                new("r1", 2, """{"n":"twice"}"""),
                new("r1", 3, """{"n":3,"end":true}""", RunStatuses.Failed, "boom"),
                new("r1", 4, """{"n":"after the end"}"""),
                new("r3", 2, """{"m":2}"""),
            ],
            CancellationToken.None);

        outcomes.ShouldBe(
        [
            RunEventOutcome.Ignored, RunEventOutcome.Stored, RunEventOutcome.UnknownRun, RunEventOutcome.Ignored, RunEventOutcome.Stored,
            RunEventOutcome.Ignored, RunEventOutcome.Stored, RunEventOutcome.Ignored, RunEventOutcome.Stored,
        ]);
        (await _store.GetRunEventsAsync("r1", 0, 100, CancellationToken.None)).ShouldBe(
            [new RunEventRecord(1, """{"n":1}"""), new RunEventRecord(2, """{"n":2}"""), new RunEventRecord(3, """{"n":3,"end":true}""")]);
        (await _store.GetRunEventsAsync("r2", 0, 100, CancellationToken.None)).ShouldBeEmpty();
        (await _store.GetRunEventsAsync("r3", 0, 100, CancellationToken.None)).Select(e => e.Seq).ShouldBe([1L, 2L]);
        (await _store.GetRunEventsAsync("nope", 0, 100, CancellationToken.None)).ShouldBeEmpty();
        (await _store.GetRunAsync("r1", CancellationToken.None)).ShouldBe(
            Some.Run("r1", "analytics", _release) with { Status = RunStatuses.Failed, Reason = "boom", FinishedAt = _database.Clock.GetUtcNow() });
        (await _store.GetRunAsync("r2", CancellationToken.None))!.Reason.ShouldBe("asked");
        (await _store.GetRunAsync("r3", CancellationToken.None))!.Status.ShouldBe(RunStatuses.Running);
    }

    [Fact]
    public async Task AppendRunEvents_SentAgain_ChangesNothing_AndAnEndAlreadyStoredStillEndsItsRun()
    {
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("r2", "analytics", _release), CancellationToken.None);
        List<RunEventToStore> batch = [new("r1", 1, "{}"), new("r1", 2, """{"end":1}""", RunStatuses.Succeeded)];
        (await _store.AppendRunEventsAsync(batch, CancellationToken.None)).ShouldBe([RunEventOutcome.Stored, RunEventOutcome.Stored]);
        var ended = (await _store.GetRunAsync("r1", CancellationToken.None))!;
        _database.Clock.Advance(TimeSpan.FromSeconds(5));

        // As after a commit whose connection broke: the retry finds everything done.
        (await _store.AppendRunEventsAsync(batch, CancellationToken.None)).ShouldBe([RunEventOutcome.Ignored, RunEventOutcome.Ignored]);
        (await _store.GetRunAsync("r1", CancellationToken.None)).ShouldBe(ended);

        // An end stored by an older server that died before it ended the run: sent again, it ends it now.
        await _store.AppendRunEventAsync("r2", 1, """{"end":2}""", CancellationToken.None);
        (await _store.AppendRunEventsAsync([new("r2", 1, """{"end":2}""", RunStatuses.Canceled, "asked")], CancellationToken.None)).ShouldBe([RunEventOutcome.Ignored]);
        (await _store.GetRunAsync("r2", CancellationToken.None))!.Status.ShouldBe(RunStatuses.Canceled);
        (await _store.AppendRunEventsAsync([], CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task AppendRunEvents_WithABadEvent_IsRefused_AndStoresNothing()
    {
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release), CancellationToken.None);

        var refused = await Should.ThrowAsync<ArgumentException>(() => _store.AppendRunEventsAsync(
            [new("r1", 1, "{}"), new("r1", 2, "{}", RunStatuses.Running)],
            CancellationToken.None));
        await Should.ThrowAsync<ArgumentException>(() => _store.AppendRunEventsAsync([new("", 1, "{}")], CancellationToken.None));

        refused.Message.ShouldContain("run event #2 of 2 (run 'r1', seq 2) ends its run as 'running'");
        (await _store.GetRunEventsAsync("r1", 0, 100, CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task AppendRunEvent_ForAnUnknownRun_IsNotFound()
    {
        var missing = await Should.ThrowAsync<MetadataNotFoundException>(
            _store.AppendRunEventAsync("nope", 1, "{}", CancellationToken.None));

        missing.Kind.ShouldBe("run");
    }

    [Fact]
    public async Task CompleteRun_RecordsTheEnd_AndALaterReportDoesNotOverwriteIt()
    {
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release), CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromSeconds(30));

        (await _store.CompleteRunAsync("r1", RunStatuses.Canceled, "canceled by ada@example.com", CancellationToken.None)).ShouldBeTrue();
        var ended = _database.Clock.GetUtcNow();
        _database.Clock.Advance(TimeSpan.FromSeconds(1));
        (await _store.CompleteRunAsync("r1", RunStatuses.Succeeded, null, CancellationToken.None)).ShouldBeFalse();

        (await _store.GetRunAsync("r1", CancellationToken.None)).ShouldBe(
            Some.Run("r1", "analytics", _release) with { Status = RunStatuses.Canceled, Reason = "canceled by ada@example.com", FinishedAt = ended });
    }

    [Fact]
    public async Task CompleteRun_Unknown_IsNotFound_AndRunningIsNotAnEnd()
    {
        await Should.ThrowAsync<MetadataNotFoundException>(_store.CompleteRunAsync("nope", RunStatuses.Failed, "x", CancellationToken.None));
        await Should.ThrowAsync<ArgumentException>(() => _store.CompleteRunAsync("nope", RunStatuses.Running, null, CancellationToken.None));
    }

    [Fact]
    public async Task ListRuns_IsNewestFirst_ForOneLocationOrAll_WithALimit()
    {
        await _store.CreateRunAsync(Some.Run("a1", "analytics", _release, Some.Time), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("b1", "reports", _release, Some.Time.AddSeconds(1)), CancellationToken.None);
        // The tied pair is inserted against its id order, so only insertion order can put a2 first.
        await _store.CreateRunAsync(Some.Run("a3", "analytics", _release, Some.Time.AddSeconds(2)), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("a2", "analytics", _release, Some.Time.AddSeconds(2)), CancellationToken.None);

        (await _store.ListRunsAsync("analytics", 10, CancellationToken.None)).Select(r => r.Id).ShouldBe(["a2", "a3", "a1"]);
        (await _store.ListRunsAsync(null, 10, CancellationToken.None)).Select(r => r.Id).ShouldBe(["a2", "a3", "b1", "a1"]);
        (await _store.ListRunsAsync(null, 2, CancellationToken.None)).Select(r => r.Id).ShouldBe(["a2", "a3"]);
        (await _store.ListRunsAsync("reports", 10, CancellationToken.None)).Select(r => r.Id).ShouldBe(["b1"]);
    }

    [Fact]
    public async Task SearchRuns_FiltersByEachGivenPart_NewestFirst_APageAtATime_AndCountRunsSince_CountsPerLocationAndStatus()
    {
        await _store.CreateRunAsync(Some.Run("a1", "analytics", _release, Some.Time) with { Job = "etl" }, CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("a2", "analytics", _release, Some.Time.AddSeconds(1)), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("b1", "reports", _release, Some.Time.AddSeconds(2)) with { Job = "etl" }, CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("a3", "analytics", _release, Some.Time.AddSeconds(3)) with { Job = "etl" }, CancellationToken.None);
        await _store.CompleteRunAsync("a1", RunStatuses.Failed, "boom", CancellationToken.None);
        await _store.CompleteRunAsync("b1", RunStatuses.Succeeded, null, CancellationToken.None);

        async Task<string[]> Search(RunFilter filter, int offset = 0, int limit = 10) =>
            [.. (await _store.SearchRunsAsync(filter, offset, limit, CancellationToken.None)).Select(r => r.Id)];

        (await Search(new RunFilter())).ShouldBe(["a3", "b1", "a2", "a1"]);
        (await Search(new RunFilter(Location: "analytics"))).ShouldBe(["a3", "a2", "a1"]);
        (await Search(new RunFilter(Job: "etl"))).ShouldBe(["a3", "b1", "a1"]);
        (await Search(new RunFilter(Location: "analytics", Job: "etl", Status: RunStatuses.Running))).ShouldBe(["a3"]);
        (await Search(new RunFilter(Status: RunStatuses.Failed))).ShouldBe(["a1"]);
        (await Search(new RunFilter(), offset: 1, limit: 2)).ShouldBe(["b1", "a2"]);
        (await Search(new RunFilter(), offset: 4)).ShouldBeEmpty();

        var counts = await _store.CountRunsSinceAsync(Some.Time.AddSeconds(1), CancellationToken.None);
        counts.OrderBy(c => c.Location, StringComparer.Ordinal).ThenBy(c => c.Status, StringComparer.Ordinal).ShouldBe(
            [new RunCount("analytics", RunStatuses.Running, 2), new RunCount("reports", RunStatuses.Succeeded, 1)]);
    }

    [Fact]
    public async Task ListRunningRuns_NamesEachRunStillGoingWithItsAgentAndLastStoredEvent()
    {
        await _store.CreateRunAsync(Some.Run("r1", "analytics", _release, agent: "agent-a"), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("r2", "reports", _release, agent: "agent-b"), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("r3", "analytics", _release, agent: "agent-a"), CancellationToken.None);
        await _store.CreateRunAsync(Some.Run("r4", "analytics", _release, agent: null), CancellationToken.None);
        await _store.AppendRunEventAsync("r1", 1, "{}", CancellationToken.None);
        await _store.AppendRunEventAsync("r1", 2, "{}", CancellationToken.None);
        await _store.AppendRunEventAsync("r3", 1, "{}", CancellationToken.None);
        await _store.CompleteRunAsync("r3", RunStatuses.Succeeded, null, CancellationToken.None);

        var running = await _store.ListRunningRunsAsync(CancellationToken.None);

        running.ShouldBe([new RunningRun("r1", "agent-a", 2), new RunningRun("r2", "agent-b", 0), new RunningRun("r4", null, 0)]);
        (await _store.GetRunAsync("r2", CancellationToken.None))!.Agent.ShouldBe("agent-b");
    }
}

public sealed class SqliteRunTests : RunContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresRunTests(PostgresServer server) : RunContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
