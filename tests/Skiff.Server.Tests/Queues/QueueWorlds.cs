using Microsoft.Extensions.Time.Testing;
using Skiff.Agent.Queues;
using Skiff.Core.Queues;
using Skiff.Server.Metadata;
using Skiff.Server.Queues;
using Skiff.Testing;

namespace Skiff.Server.Tests.Queues;

/// <summary>
/// Where one test of the task-queue contract runs: a store (and a broker) that several queues share, as several
/// processes (a caller, workers) would, and ways to make those processes crash and time pass.
/// </summary>
internal interface IQueueWorld : IAsyncDisposable
{
    /// <summary>Delivery limit every queue of the world is opened with.</summary>
    const int DeliveryLimit = 3;

    /// <summary>A queue as another process would open it on the same store or broker.</summary>
    Task<ITaskQueue> OpenAsync();

    /// <summary>Makes the process owning <paramref name="queue"/> crash: its consumers stop without settling or handing anything back.</summary>
    Task CrashAsync(ITaskQueue queue);

    /// <summary>Lets the time pass after which what a crashed worker held is ready again (none on a broker: its connection closed).</summary>
    void LetLeasesRunOut();
}

/// <summary>The embedded queue on one metadata database, its clock a <see cref="FakeTimeProvider"/> that only tests move.</summary>
internal sealed class StoreQueueWorld(Func<TimeProvider, Task<IMetadataStore>> open, Func<ValueTask> cleanUp) : IQueueWorld
{
    public static readonly TimeSpan VisibilityTimeout = TimeSpan.FromSeconds(30);

    private readonly List<IAsyncDisposable> _owned = [];

    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 11, 29, 12, 0, 0, TimeSpan.Zero));

    /// <summary>One per world, as one process has one: queues opened here are processes whose publishes wake each other at once.</summary>
    private readonly TaskWakeups _wakeups = new();

    public async Task<ITaskQueue> OpenAsync()
    {
        var store = await open(Clock);
        var queue = new StoreTaskQueue(store, Clock, new StoreTaskQueueOptions { VisibilityTimeout = VisibilityTimeout, DeliveryLimit = IQueueWorld.DeliveryLimit, Wakeups = _wakeups });
        _owned.Add(queue);
        _owned.Add(store);
        return queue;
    }

    public Task CrashAsync(ITaskQueue queue)
    {
        ((StoreTaskQueue)queue).Crash();
        return Task.CompletedTask;
    }

    public void LetLeasesRunOut() => Clock.Advance(VisibilityTimeout + TimeSpan.FromSeconds(1));

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }

        await cleanUp();
    }
}

/// <summary>The RabbitMQ queue on the shared broker, its results in a SQLite metadata store of its own, each test on pools of its own.</summary>
internal sealed class RabbitMqQueueWorld(RabbitMqBroker broker) : IQueueWorld
{
    private readonly string _folder = Directory.CreateTempSubdirectory("skiff-queue-tests-").FullName;
    private readonly List<IAsyncDisposable> _owned = [];
    private IMetadataStore? _store;

    /// <summary>Well under the broker's consumer timeout, as it must be; a test that shows the timeout sets it longer.</summary>
    public TimeSpan HandoverAfter { get; init; } = RabbitMqBroker.ConsumerTimeout / 3;

    /// <summary>The metadata store the world's queues record results in and hand long tasks to; there once a queue is opened.</summary>
    public ITaskStore Store => _store ?? throw new InvalidOperationException("no queue was opened in this world yet");

    public async Task<ITaskQueue> OpenAsync()
    {
        _store ??= await SqliteMetadataStore.OpenAsync(Path.Combine(_folder, "skiff.db"), TimeProvider.System, CancellationToken.None);
        var queue = new RabbitMqTaskQueue(
            new RabbitMqTaskQueueOptions
            {
                Uri = broker.Uri,
                ManagementUri = broker.ManagementUri,
                DeliveryLimit = IQueueWorld.DeliveryLimit,
                HandoverAfter = HandoverAfter,
                CustodyLease = TimeSpan.FromSeconds(5),
                SweepInterval = TimeSpan.FromSeconds(1),
            },
            _store,
            TimeProvider.System);
        _owned.Add(queue);
        return queue;
    }

    public Task CrashAsync(ITaskQueue queue) => ((RabbitMqTaskQueue)queue).CrashAsync();

    public void LetLeasesRunOut()
    {
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }

        if (_store is not null)
        {
            await _store.DisposeAsync();
        }

        Directory.Delete(_folder, recursive: true);
    }
}
