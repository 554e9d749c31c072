using System.Text;
using Skiff.Core.Queues;
using Skiff.Server.Metadata;
using Skiff.Server.Queues;

namespace Skiff.Server.Tests.Metadata;

/// <summary>What the task dispatcher asks the store beside the queue's contract, on a real SQLite store.</summary>
public sealed class TaskStoreTests : IAsyncLifetime
{
    private readonly TestDatabase _database = new();
    private IMetadataStore _store = null!;
    private StoreTaskQueue _queue = null!;

    public async Task InitializeAsync()
    {
        _store = await SqliteMetadataStore.OpenAsync(_database.Path, TimeProvider.System, CancellationToken.None);
        _queue = new StoreTaskQueue(_store, TimeProvider.System, new StoreTaskQueueOptions());
    }

    public async Task DisposeAsync()
    {
        await _queue.DisposeAsync();
        await _store.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task A_task_is_queued_from_its_publish_while_a_worker_holds_it_until_its_result_is_recorded()
    {
        var before = await _store.IsTaskQueuedAsync("run-1:mesh:0", CancellationToken.None);
        await _queue.PublishAsync("meshing", new TaskMessage("run-1:mesh:0", Encoding.UTF8.GetBytes("{}")), CancellationToken.None);
        var published = await _store.IsTaskQueuedAsync("run-1:mesh:0", CancellationToken.None);
        await using var worker = await _queue.ConsumeAsync("meshing", new ConsumeOptions { Worker = "agent-1" }, CancellationToken.None);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var held = await worker.ReceiveAsync(deadline.Token);
        var leased = await _store.IsTaskQueuedAsync("run-1:mesh:0", CancellationToken.None);
        await worker.CompleteAsync(held, Encoding.UTF8.GetBytes("42"), CancellationToken.None);
        var settled = await _store.IsTaskQueuedAsync("run-1:mesh:0", CancellationToken.None);

        before.ShouldBeFalse();
        published.ShouldBeTrue();
        leased.ShouldBeTrue("a task a worker holds is still queued: a call sent again for it must not be refused");
        settled.ShouldBeFalse();
    }
}
