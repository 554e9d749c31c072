using System.Diagnostics;
using System.Text;
using Skiff.Core.Queues;
using Skiff.Server.Metadata;
using Skiff.Server.Tests.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Queues;

/// <summary>The task-queue contract (docs/queues.md), run against the embedded queue on SQLite and PostgreSQL and against RabbitMQ by the classes below it.</summary>
public abstract class TaskQueueContract : IAsyncLifetime
{
    private protected static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private protected IQueueWorld World = null!;
    private protected ITaskQueue Queue = null!;

    /// <summary>A pool of this test's own, so tests sharing a broker never see each other's tasks.</summary>
    private protected readonly string Pool = $"p{Guid.NewGuid():N}"[..12];

    public async Task InitializeAsync()
    {
        World = await CreateWorldAsync();
        Queue = await World.OpenAsync();
    }

    public async Task DisposeAsync() => await World.DisposeAsync();

    private protected abstract Task<IQueueWorld> CreateWorldAsync();

    private protected static TaskMessage Task(string id, string payload = "input") =>
        new(id, Encoding.UTF8.GetBytes(payload), new Dictionary<string, string> { [TaskHeaders.CallerRun] = "run-1", [TaskHeaders.CallerOp] = "mesh", [TaskHeaders.PinnedRelease] = "sha256:ab12" });

    private protected static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private protected static async Task<TaskDelivery> ReceiveAsync(ITaskConsumer consumer)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        return await consumer.ReceiveAsync(deadline.Token);
    }

    /// <summary>Waits until the pool's counts are <paramref name="expected"/>: the broker's management statistics lag by up to half a second.</summary>
    private protected async Task CountsBecomeAsync(PoolTaskCounts expected)
    {
        var waited = Stopwatch.StartNew();
        var counts = await Queue.CountAsync(Pool, CancellationToken.None);
        while (counts != expected && waited.Elapsed < Deadline)
        {
            await System.Threading.Tasks.Task.Delay(100);
            counts = await Queue.CountAsync(Pool, CancellationToken.None);
        }

        counts.ShouldBe(expected);
    }

    /// <summary>Waits for the task's result: a dead-lettering happens when a consumer next looks for work.</summary>
    private protected async Task<TaskResult> ResultBecomesKnownAsync(string taskId)
    {
        var waited = Stopwatch.StartNew();
        TaskResult? result;
        while ((result = await Queue.GetResultAsync(taskId, CancellationToken.None)) is null && waited.Elapsed < Deadline)
        {
            await System.Threading.Tasks.Task.Delay(50);
        }

        return result.ShouldNotBeNull();
    }

    [Fact]
    public async Task A_published_task_is_delivered_with_its_payload_and_headers_and_its_result_is_recorded_before_it_leaves_the_queue()
    {
        await Queue.PublishAsync(Pool, Task("t-1", "hello"), CancellationToken.None);
        await using var consumer = await Queue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "w1" }, CancellationToken.None);

        var delivery = await ReceiveAsync(consumer);

        delivery.Task.Id.ShouldBe("t-1");
        Encoding.UTF8.GetString(delivery.Task.Payload).ShouldBe("hello");
        delivery.Task.Headers[TaskHeaders.CallerRun].ShouldBe("run-1");
        delivery.Task.Headers[TaskHeaders.CallerOp].ShouldBe("mesh");
        delivery.Task.Headers[TaskHeaders.PinnedRelease].ShouldBe("sha256:ab12");
        delivery.DeliveryCount.ShouldBe(1);
        delivery.LastError.ShouldBeNull();
        (await Queue.GetResultAsync("t-1", CancellationToken.None)).ShouldBeNull();

        (await consumer.CompleteAsync(delivery, Bytes("world"), CancellationToken.None)).ShouldBeTrue();

        var result = (await Queue.GetResultAsync("t-1", CancellationToken.None)).ShouldNotBeNull();
        result.Succeeded.ShouldBeTrue();
        Encoding.UTF8.GetString(result.Payload!).ShouldBe("world");
        result.Pool.ShouldBe(Pool);
        result.Deliveries.ShouldBe(1);
        await CountsBecomeAsync(new PoolTaskCounts(0, 0));
    }

    [Fact]
    public async Task A_task_whose_worker_crashed_before_acknowledging_is_delivered_again_with_count_two()
    {
        await Queue.PublishAsync(Pool, Task("t-1"), CancellationToken.None);
        var crashing = await World.OpenAsync();
        var first = await crashing.ConsumeAsync(Pool, new ConsumeOptions { Worker = "crashing" }, CancellationToken.None);
        (await ReceiveAsync(first)).DeliveryCount.ShouldBe(1);

        await World.CrashAsync(crashing);
        World.LetLeasesRunOut();
        await using var second = await Queue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "second" }, CancellationToken.None);
        var again = await ReceiveAsync(second);

        again.Task.Id.ShouldBe("t-1");
        again.DeliveryCount.ShouldBe(2);
        again.LastError.ShouldBeNull();
        (await second.CompleteAsync(again, Bytes("done"), CancellationToken.None)).ShouldBeTrue();
        (await Queue.GetResultAsync("t-1", CancellationToken.None)).ShouldNotBeNull().Deliveries.ShouldBe(2);
    }

    [Fact]
    public async Task A_task_failed_at_every_delivery_is_dead_lettered_at_the_limit_with_its_last_error()
    {
        await Queue.PublishAsync(Pool, Task("poison"), CancellationToken.None);
        await using var consumer = await Queue.ConsumeAsync(Pool, new ConsumeOptions(), CancellationToken.None);

        string? previous = null;
        for (var delivery = 1; delivery <= IQueueWorld.DeliveryLimit; delivery++)
        {
            var received = await ReceiveAsync(consumer);
            received.DeliveryCount.ShouldBe(delivery);
            received.LastError.ShouldBe(previous);
            received.PreviousError.ShouldBe(previous);
            previous = $"failure {delivery}: the mesh has no faces";
            await consumer.FailAsync(received, previous, CancellationToken.None);
        }

        var result = (await Queue.GetResultAsync("poison", CancellationToken.None)).ShouldNotBeNull();
        result.Succeeded.ShouldBeFalse();
        result.Error.ShouldBe($"failure {IQueueWorld.DeliveryLimit}: the mesh has no faces");
        result.Deliveries.ShouldBe(IQueueWorld.DeliveryLimit);
        result.Payload.ShouldBeNull();
        await CountsBecomeAsync(new PoolTaskCounts(0, 0));
    }

    [Fact]
    public async Task A_task_whose_worker_crashes_at_every_delivery_is_dead_lettered_after_the_limit_saying_so()
    {
        await Queue.PublishAsync(Pool, Task("crasher"), CancellationToken.None);
        for (var delivery = 1; delivery <= IQueueWorld.DeliveryLimit; delivery++)
        {
            var worker = await World.OpenAsync();
            var consumer = await worker.ConsumeAsync(Pool, new ConsumeOptions(), CancellationToken.None);
            (await ReceiveAsync(consumer)).DeliveryCount.ShouldBe(delivery);
            await World.CrashAsync(worker);
            World.LetLeasesRunOut();
        }

        // The next consumer does not get it: it is dead-lettered as it comes back.
        await using var last = await Queue.ConsumeAsync(Pool, new ConsumeOptions(), CancellationToken.None);
        var waiting = last.ReceiveAsync(CancellationToken.None).AsTask();
        var result = await ResultBecomesKnownAsync("crasher");

        result.Succeeded.ShouldBeFalse();
        result.Error.ShouldNotBeNull().ShouldContain($"task crasher was delivered {IQueueWorld.DeliveryLimit} times, the limit");
        result.Error.ShouldContain("crashed, was killed or lost its connection");
        waiting.IsCompleted.ShouldBeFalse();
    }

    [Theory]
    [InlineData("crashed")]
    [InlineData("stopped")]
    public async Task A_delivery_after_one_that_ended_without_a_word_is_not_told_an_older_error_and_the_dead_letter_still_names_it(string secondWorker)
    {
        const string Error = "gpu busy: the mesh has no faces";
        await Queue.PublishAsync(Pool, Task("t-1"), CancellationToken.None);
        var firstQueue = await World.OpenAsync();
        var first = await firstQueue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "first" }, CancellationToken.None);
        await first.FailAsync(await ReceiveAsync(first), Error, CancellationToken.None);

        // Delivery 2 (to the same worker: a copy the broker pushed to it would come back counted) is told why, then ends
        // without a word.
        var second = await ReceiveAsync(first);
        second.DeliveryCount.ShouldBe(2);
        second.PreviousError.ShouldBe(Error);
        if (secondWorker == "crashed")
        {
            await World.CrashAsync(firstQueue);
            World.LetLeasesRunOut();
        }
        else
        {
            await first.DisposeAsync();
        }

        var thirdQueue = await World.OpenAsync();
        var third = await ReceiveAsync(await thirdQueue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "third" }, CancellationToken.None));

        third.DeliveryCount.ShouldBe(3);
        third.PreviousError.ShouldBeNull();
        TaskQueueErrors.Redelivered(third.DeliveryCount, third.PreviousError).ShouldNotBeNull().ShouldStartWith("the previous delivery ended without a result");
        third.LastError.ShouldBe(Error);

        // The last allowed delivery ends without a word too: the task is dead-lettered with the error a delivery reported.
        await World.CrashAsync(thirdQueue);
        World.LetLeasesRunOut();
        await using var last = await Queue.ConsumeAsync(Pool, new ConsumeOptions(), CancellationToken.None);
        var waiting = last.ReceiveAsync(CancellationToken.None).AsTask();
        var result = await ResultBecomesKnownAsync("t-1");

        result.Succeeded.ShouldBeFalse();
        result.Error.ShouldBe(TaskQueueErrors.LeaseRanOut("t-1", IQueueWorld.DeliveryLimit, Error));
        waiting.IsCompleted.ShouldBeFalse();
    }

    [Fact]
    public async Task A_result_counts_once_and_a_task_with_a_result_is_not_queued_again()
    {
        await Queue.PublishAsync(Pool, Task("t-1"), CancellationToken.None);
        await using var consumer = await Queue.ConsumeAsync(Pool, new ConsumeOptions(), CancellationToken.None);
        var delivery = await ReceiveAsync(consumer);

        (await consumer.CompleteAsync(delivery, Bytes("first"), CancellationToken.None)).ShouldBeTrue();
        (await consumer.CompleteAsync(delivery, Bytes("second"), CancellationToken.None)).ShouldBeFalse();
        await Queue.PublishAsync(Pool, Task("t-1"), CancellationToken.None);

        Encoding.UTF8.GetString((await Queue.GetResultAsync("t-1", CancellationToken.None))!.Payload!).ShouldBe("first");
        await CountsBecomeAsync(new PoolTaskCounts(0, 0));
    }

    [Fact]
    public async Task Ready_and_in_flight_counts_follow_the_tasks_and_a_consumer_never_holds_more_than_its_prefetch()
    {
        for (var i = 1; i <= 5; i++)
        {
            await Queue.PublishAsync(Pool, Task($"t-{i}"), CancellationToken.None);
        }

        await CountsBecomeAsync(new PoolTaskCounts(5, 0));
        await using var consumer = await Queue.ConsumeAsync(Pool, new ConsumeOptions { Prefetch = 2 }, CancellationToken.None);
        var first = await ReceiveAsync(consumer);
        var second = await ReceiveAsync(consumer);
        var third = consumer.ReceiveAsync(CancellationToken.None).AsTask();

        await CountsBecomeAsync(new PoolTaskCounts(3, 2));
        third.IsCompleted.ShouldBeFalse();
        new[] { first.Task.Id, second.Task.Id }.ShouldBe(["t-1", "t-2"]);

        await consumer.CompleteAsync(first, Bytes("1"), CancellationToken.None);
        (await third.WaitAsync(Deadline)).Task.Id.ShouldBe("t-3");
        await CountsBecomeAsync(new PoolTaskCounts(2, 2));
    }

    [Fact]
    public async Task A_consumer_that_stops_gives_back_what_it_held_unsettled()
    {
        await Queue.PublishAsync(Pool, Task("t-1"), CancellationToken.None);
        var stopping = await Queue.ConsumeAsync(Pool, new ConsumeOptions(), CancellationToken.None);
        await ReceiveAsync(stopping);

        await stopping.DisposeAsync();
        await using var next = await Queue.ConsumeAsync(Pool, new ConsumeOptions(), CancellationToken.None);

        var again = await ReceiveAsync(next);
        again.Task.Id.ShouldBe("t-1");
        (await next.CompleteAsync(again, Bytes("done"), CancellationToken.None)).ShouldBeTrue();
    }
}

public sealed class SqliteTaskQueueTests : TaskQueueContract
{
    private StoreQueueWorld _world = null!;

    private protected override Task<IQueueWorld> CreateWorldAsync()
    {
        var database = new TestDatabase();
        _world = new StoreQueueWorld(async clock => await SqliteMetadataStore.OpenAsync(database.Path, clock, CancellationToken.None), database.DisposeAsync);
        return System.Threading.Tasks.Task.FromResult<IQueueWorld>(_world);
    }

    [Fact]
    public async Task A_leased_task_is_ready_again_exactly_when_its_visibility_timeout_ends() =>
        await StoreQueueTests.VisibilityTimeoutAsync(_world, Queue, Pool);
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresTaskQueueTests(PostgresServer server) : TaskQueueContract
{
    private StoreQueueWorld _world = null!;

    private protected override async Task<IQueueWorld> CreateWorldAsync()
    {
        var database = await PostgresTestDatabase.CreateAsync(server);
        _world = new StoreQueueWorld(async clock => await PostgresMetadataStore.OpenAsync(database.ConnectionString, clock, CancellationToken.None), database.DisposeAsync);
        return _world;
    }

    [Fact]
    public async Task A_leased_task_is_ready_again_exactly_when_its_visibility_timeout_ends() =>
        await StoreQueueTests.VisibilityTimeoutAsync(_world, Queue, Pool);
}

/// <summary>What only the embedded queue has: leases that run out on the store's clock.</summary>
internal static class StoreQueueTests
{
    public static async Task VisibilityTimeoutAsync(StoreQueueWorld world, ITaskQueue queue, string pool)
    {
        await queue.PublishAsync(pool, new TaskMessage("t-1", [1]), CancellationToken.None);
        var crashing = await world.OpenAsync();
        var consumer = await crashing.ConsumeAsync(pool, new ConsumeOptions(), CancellationToken.None);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await consumer.ReceiveAsync(deadline.Token);
        await world.CrashAsync(crashing);

        world.Clock.Advance(StoreQueueWorld.VisibilityTimeout - TimeSpan.FromMilliseconds(1));
        (await queue.CountAsync(pool, CancellationToken.None)).ShouldBe(new PoolTaskCounts(0, 1));

        world.Clock.Advance(TimeSpan.FromMilliseconds(1));
        (await queue.CountAsync(pool, CancellationToken.None)).ShouldBe(new PoolTaskCounts(1, 0));
    }
}
