using System.Text;
using Skiff.Core.Queues;
using Skiff.Server.Metadata;
using Skiff.Server.Queues;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>What the task dispatcher asks the store beside the queue's contract, on real SQLite and PostgreSQL stores.</summary>
public abstract class TaskStoreTests : IAsyncLifetime
{
    private IMetadataStore _store = null!;
    private StoreTaskQueue _queue = null!;
    private Func<ValueTask> _dropDatabase = () => ValueTask.CompletedTask;

    public async Task InitializeAsync()
    {
        (_store, _dropDatabase) = await OpenAsync();
        _queue = new StoreTaskQueue(_store, TimeProvider.System, new StoreTaskQueueOptions());
    }

    public async Task DisposeAsync()
    {
        await _queue.DisposeAsync();
        await _store.DisposeAsync();
        await _dropDatabase();
    }

    private protected abstract Task<(IMetadataStore Store, Func<ValueTask> Drop)> OpenAsync();

    [Fact]
    public async Task A_task_is_queued_from_its_publish_while_a_worker_holds_it_until_its_result_is_recorded()
    {
        var before = await _store.HasTaskAsync("run-1:mesh:0", CancellationToken.None);
        await _queue.PublishAsync("meshing", new TaskMessage("run-1:mesh:0", Encoding.UTF8.GetBytes("{}")), CancellationToken.None);
        var published = await _store.HasTaskAsync("run-1:mesh:0", CancellationToken.None);
        await using var worker = await _queue.ConsumeAsync("meshing", new ConsumeOptions { Worker = "agent-1" }, CancellationToken.None);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var held = await worker.ReceiveAsync(deadline.Token);
        var leased = await _store.HasTaskAsync("run-1:mesh:0", CancellationToken.None);
        await worker.CompleteAsync(held, Encoding.UTF8.GetBytes("42"), CancellationToken.None);
        var settled = await _store.HasTaskAsync("run-1:mesh:0", CancellationToken.None);

        before.ShouldBeFalse();
        published.ShouldBeTrue();
        leased.ShouldBeTrue("a task a worker holds is still queued: a call sent again for it must not be refused");
        settled.ShouldBeFalse();
    }

    [Fact]
    public async Task A_task_held_by_a_worker_names_that_worker_as_its_holder_and_none_once_settled()
    {
        var before = await _store.GetTaskHolderAsync("run-1:mesh:0", CancellationToken.None);
        await _queue.PublishAsync("meshing", new TaskMessage("run-1:mesh:0", Encoding.UTF8.GetBytes("{}")), CancellationToken.None);
        var published = await _store.GetTaskHolderAsync("run-1:mesh:0", CancellationToken.None);
        await using var worker = await _queue.ConsumeAsync("meshing", new ConsumeOptions { Worker = "agent-1" }, CancellationToken.None);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var held = await worker.ReceiveAsync(deadline.Token);
        var leased = await _store.GetTaskHolderAsync("run-1:mesh:0", CancellationToken.None);
        await worker.CompleteAsync(held, Encoding.UTF8.GetBytes("42"), CancellationToken.None);
        var settled = await _store.GetTaskHolderAsync("run-1:mesh:0", CancellationToken.None);

        before.ShouldBeNull();
        published.ShouldBeNull();
        leased.ShouldNotBeNull().ShouldStartWith("agent-1/");
        settled.ShouldBeNull();
    }

    [Fact]
    public async Task The_waiting_calls_that_have_results_are_found_in_one_lookup()
    {
        var none = await _store.ListTaskResultIdsAsync([], CancellationToken.None);
        foreach (var id in (string[])["run-1:mesh:1/1", "run-1:mesh:3/1"])
        {
            await _store.RecordTaskResultAsync(new TaskResult(id, "meshing", Succeeded: true, Encoding.UTF8.GetBytes("42"), Error: null, 1, DateTimeOffset.UtcNow), CancellationToken.None);
        }

        await _queue.PublishAsync("meshing", new TaskMessage("run-1:mesh:2/1", Encoding.UTF8.GetBytes("{}")), CancellationToken.None);
        var found = await _store.ListTaskResultIdsAsync(["run-1:mesh:1/1", "run-1:mesh:2/1", "run-1:mesh:3/1", "run-1:mesh:4/1", "it's \"quoted\""], CancellationToken.None);

        none.ShouldBeEmpty();
        found.Order(StringComparer.Ordinal).ToList().ShouldBe(["run-1:mesh:1/1", "run-1:mesh:3/1"], "the recorded ones, not the queued one nor the unknown");
    }

    [Fact]
    public async Task A_call_canceled_on_a_broker_counts_as_a_copy_left_there_until_a_worker_records_a_result_for_it()
    {
        var canceled = new TaskResult("run-1:mesh:1/1", "meshing", Succeeded: true, Encoding.UTF8.GetBytes("canceled"), Error: null, 0, DateTimeOffset.UtcNow);
        (await _store.RecordCanceledOnBrokerAsync(canceled, CancellationToken.None)).ShouldBeTrue();
        (await _store.RecordCanceledOnBrokerAsync(canceled with { TaskId = "run-1:mesh:2/1" }, CancellationToken.None)).ShouldBeTrue();
        await _store.RecordTaskResultAsync(canceled with { TaskId = "run-1:mesh:3/1", Payload = Encoding.UTF8.GetBytes("42") }, CancellationToken.None);
        (await _store.RecordCanceledOnBrokerAsync(canceled with { TaskId = "run-1:mesh:3/1" }, CancellationToken.None)).ShouldBeFalse("it had a result: nothing is left on the broker for it");
        var left = await _store.CountBrokerCopiesAsync("meshing", CancellationToken.None);
        var otherPool = await _store.CountBrokerCopiesAsync("other", CancellationToken.None);

        // A worker took the first copy and settled it: the canceled result stays, the copy is gone.
        (await _store.RecordTaskResultAsync(canceled with { Payload = Encoding.UTF8.GetBytes("ran anyway"), Deliveries = 1 }, CancellationToken.None)).ShouldBeFalse();
        var afterWorker = await _store.CountBrokerCopiesAsync("meshing", CancellationToken.None);

        (left, otherPool, afterWorker).ShouldBe((2L, 0L, 1L));
        Encoding.UTF8.GetString((await _store.GetTaskResultAsync("run-1:mesh:1/1", CancellationToken.None))!.Payload!).ShouldBe("canceled");
        Encoding.UTF8.GetString((await _store.GetTaskResultAsync("run-1:mesh:3/1", CancellationToken.None))!.Payload!).ShouldBe("42");
    }
}

public sealed class SqliteTaskStoreTests : TaskStoreTests
{
    private protected override async Task<(IMetadataStore Store, Func<ValueTask> Drop)> OpenAsync()
    {
        var database = new TestDatabase();
        return (await SqliteMetadataStore.OpenAsync(database.Path, TimeProvider.System, CancellationToken.None), database.DisposeAsync);
    }
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresTaskStoreTests(PostgresServer server) : TaskStoreTests
{
    private protected override async Task<(IMetadataStore Store, Func<ValueTask> Drop)> OpenAsync()
    {
        var database = await PostgresTestDatabase.CreateAsync(server);
        return (await PostgresMetadataStore.OpenAsync(database.ConnectionString, TimeProvider.System, CancellationToken.None), database.DisposeAsync);
    }
}
