using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Skiff.Agent.Queues;
using Skiff.Core.Queues;
using Skiff.Testing;

namespace Skiff.Server.Tests.Queues;

/// <summary>The task-queue contract on RabbitMQ, and what only a broker has: restarts, and its consumer timeout.</summary>
[Collection(RabbitMqBroker.Collection)]
public sealed class RabbitMqTaskQueueTests(RabbitMqBroker broker) : TaskQueueContract
{
    private protected override Task<IQueueWorld> CreateWorldAsync() => System.Threading.Tasks.Task.FromResult<IQueueWorld>(new RabbitMqQueueWorld(broker));

    [Fact]
    public async Task A_broker_restart_in_the_middle_of_the_flow_loses_no_task_and_records_each_result_once()
    {
        const int Tasks = 60;
        var results = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var workers = Enumerable.Range(0, 2).Select(w => System.Threading.Tasks.Task.Run(async () =>
        {
            var queue = await World.OpenAsync();
            await using var consumer = await queue.ConsumeAsync(Pool, new ConsumeOptions { Worker = $"w{w}" }, stop.Token);
            while (!stop.IsCancellationRequested)
            {
                TaskDelivery delivery;
                try
                {
                    delivery = await consumer.ReceiveAsync(stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                try
                {
                    if (await consumer.CompleteAsync(delivery, Encoding.UTF8.GetBytes(delivery.Task.Id), stop.Token))
                    {
                        results.AddOrUpdate(delivery.Task.Id, 1, (_, n) => n + 1);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The broker went away between recording and acknowledging: the task comes again and counts once.
                }
            }
        })).ToList();

        for (var i = 0; i < Tasks / 2; i++)
        {
            await Queue.PublishAsync(Pool, Task($"t-{i:D3}"), CancellationToken.None);
        }

        // Publishes go on while the broker stops and starts: each returns only once the broker confirmed it.
        var restart = System.Threading.Tasks.Task.Run(async () =>
        {
            await broker.StopAsync();
            await broker.StartAsync();
        });
        for (var i = Tasks / 2; i < Tasks; i++)
        {
            await Queue.PublishAsync(Pool, Task($"t-{i:D3}"), CancellationToken.None);
        }

        await restart;
        var waited = Stopwatch.StartNew();
        while (results.Count < Tasks && waited.Elapsed < TimeSpan.FromSeconds(60))
        {
            await System.Threading.Tasks.Task.Delay(100);
        }

        await stop.CancelAsync();
        await System.Threading.Tasks.Task.WhenAll(workers);
        var missing = new List<string>();
        for (var i = 0; i < Tasks; i++)
        {
            if (!results.ContainsKey($"t-{i:D3}"))
            {
                var recorded = await Queue.GetResultAsync($"t-{i:D3}", CancellationToken.None);
                missing.Add($"t-{i:D3}: {(recorded is null ? "no result" : $"{recorded.Deliveries} deliveries, error {recorded.Error}")}");
            }
        }

        missing.ShouldBeEmpty();
        results.Count.ShouldBe(Tasks);
        results.Values.ShouldAllBe(n => n == 1);
        for (var i = 0; i < Tasks; i++)
        {
            (await Queue.GetResultAsync($"t-{i:D3}", CancellationToken.None)).ShouldNotBeNull().Succeeded.ShouldBeTrue();
        }
    }

    [Fact]
    public async Task Copies_of_calls_canceled_while_they_wait_on_the_broker_are_no_work_and_are_settled_without_running()
    {
        var store = ((RabbitMqTaskQueue)Queue).Store;
        await Queue.PublishAsync(Pool, Task("kept"), CancellationToken.None);
        await Queue.PublishAsync(Pool, Task("canceled"), CancellationToken.None);
        await CountsBecomeAsync(new PoolTaskCounts(2, 0));

        // The broker's sample still holds both copies (nothing took them); the store's marks are read at each count.
        await store.RecordCanceledOnBrokerAsync(Canceled("canceled"), CancellationToken.None);
        (await Queue.CountAsync(Pool, CancellationToken.None)).ShouldBe(new PoolTaskCounts(1, 0));
        await store.RecordCanceledOnBrokerAsync(Canceled("kept"), CancellationToken.None);
        (await Queue.CountAsync(Pool, CancellationToken.None)).ShouldBe(new PoolTaskCounts(0, 0), "all that waits is canceled: a pool at zero stays there");

        // A worker never gets them: each is settled as it comes off the queue (acknowledged, its mark cleared), so the first
        // delivery handed out is the task published after them.
        await Queue.PublishAsync(Pool, Task("new"), CancellationToken.None);
        await using (var consumer = await Queue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "w1" }, CancellationToken.None))
        {
            var delivery = await ReceiveAsync(consumer);
            delivery.Task.Id.ShouldBe("new", "a copy of a call that has a result is not handed to a worker");
            (await consumer.CompleteAsync(delivery, Bytes("ran"), CancellationToken.None)).ShouldBeTrue();
        }

        // Settled, the copies no longer count against new work.
        (await store.CountBrokerCopiesAsync(Pool, CancellationToken.None)).ShouldBe(0);
        await Queue.PublishAsync(Pool, Task("newer"), CancellationToken.None);
        await CountsBecomeAsync(new PoolTaskCounts(1, 0));
        Encoding.UTF8.GetString((await Queue.GetResultAsync("kept", CancellationToken.None))!.Payload!).ShouldBe("canceled");

        TaskResult Canceled(string id) => new(id, Pool, Succeeded: true, Bytes("canceled"), Error: null, Deliveries: 0, DateTimeOffset.UtcNow);
    }

    [Fact]
    public async Task A_task_running_longer_than_the_consumer_timeout_is_handed_to_the_store_and_runs_once()
    {
        var queue = Queue;
        var world = World;
        await queue.PublishAsync(Pool, Task("long"), CancellationToken.None);
        await using var running = await queue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "running" }, CancellationToken.None);
        var delivery = await ReceiveAsync(running);
        var idleQueue = await world.OpenAsync();
        await using var idle = await idleQueue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "idle" }, CancellationToken.None);
        var idleGets = idle.ReceiveAsync(CancellationToken.None).AsTask();

        // The task "runs" for two consumer timeouts (plus the broker's half-second check): had its delivery stayed
        // unacknowledged, the broker would have closed the channel and handed the task to the idle worker. Real time:
        // it is the broker's clock that is under test.
        await System.Threading.Tasks.Task.Delay(RabbitMqBroker.ConsumerTimeout * 2 + TimeSpan.FromSeconds(1));

        idleGets.IsCompleted.ShouldBeFalse();
        (await running.CompleteAsync(delivery, Bytes("done"), CancellationToken.None)).ShouldBeTrue();
        var result = (await queue.GetResultAsync("long", CancellationToken.None)).ShouldNotBeNull();
        result.Deliveries.ShouldBe(1);
        await CountsBecomeAsync(new PoolTaskCounts(0, 0));
        idleGets.IsCompleted.ShouldBeFalse();
    }

    [Fact]
    public async Task A_task_whose_custody_ran_out_after_a_failed_delivery_comes_back_not_told_that_failure_as_its_reason()
    {
        const string Error = "gpu busy: the mesh has no faces";
        var world = (RabbitMqQueueWorld)World;
        await Queue.PublishAsync(Pool, Task("long"), CancellationToken.None);
        var crashingQueue = await world.OpenAsync();
        var crashing = await crashingQueue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "crashing" }, CancellationToken.None);
        await crashing.FailAsync(await ReceiveAsync(crashing), Error, CancellationToken.None);
        (await ReceiveAsync(crashing)).PreviousError.ShouldBe(Error);

        // Delivery 2 runs past HandoverAfter, into the store's custody, and its worker dies there.
        await ConditionAsync(() => world.Store.HasTaskAsync("long", CancellationToken.None), "the task is handed to the store's custody");
        await World.CrashAsync(crashingQueue);

        // The next worker's sweep sends it back to the broker once the custody lease runs out. Received once the store let
        // go of it, so that the sweep is known to have sent it (a copy may also arrive first: the test below).
        var nextQueue = await world.OpenAsync();
        await using var next = await nextQueue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "next" }, CancellationToken.None);
        await ConditionAsync(async () => !await world.Store.HasTaskAsync("long", CancellationToken.None), "the sweep takes the task out of the store");
        var third = await ReceiveAsync(next);

        third.DeliveryCount.ShouldBe(3);
        third.PreviousError.ShouldBeNull();
        third.LastError.ShouldBe(Error);
    }

    [Fact]
    public async Task A_copy_a_sweep_sent_back_runs_even_when_it_arrives_before_the_sweep_took_the_task_out_of_the_store()
    {
        var world = (RabbitMqQueueWorld)World;
        await Queue.PublishAsync(Pool, Task("swept"), CancellationToken.None);
        var crashingQueue = await world.OpenAsync();
        var crashing = await crashingQueue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "crashing" }, CancellationToken.None);
        (await ReceiveAsync(crashing)).DeliveryCount.ShouldBe(1);
        await ConditionAsync(() => world.Store.HasTaskAsync("swept", CancellationToken.None), "the task is handed to the store's custody");
        await World.CrashAsync(crashingQueue);

        // A sweep, by hand, stopped between its two steps: it leased the task whose custody ran out and the broker confirmed
        // its copy, but it has not taken the task out of the store yet.
        const string Sweeper = "by-hand" + RabbitMqTaskConsumer.SweepSuffix;
        IReadOnlyList<TaskDelivery> swept = [];
        await ConditionAsync(
            async () => (swept = await world.Store.LeaseTasksAsync(Pool, Sweeper, TimeSpan.FromMinutes(10), 20, IQueueWorld.DeliveryLimit, CancellationToken.None)).Count > 0,
            "the custody lease runs out");
        var task = swept.ShouldHaveSingleItem();
        await ((RabbitMqTaskQueue)Queue).PublishCopyAsync(RabbitMqTaskQueue.QueueName(Pool), Pool, task.Task, task.DeliveryCount - 1, task.LastError, task.LastErrorDelivery, CancellationToken.None);

        var nextQueue = await world.OpenAsync();
        await using var next = await nextQueue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "next" }, CancellationToken.None);
        var again = await ReceiveAsync(next);

        again.Task.Id.ShouldBe("swept");
        again.DeliveryCount.ShouldBe(2);
        (await world.Store.GetTaskHolderAsync("swept", CancellationToken.None)).ShouldBe(Sweeper);
        (await next.CompleteAsync(again, Bytes("done"), CancellationToken.None)).ShouldBeTrue();
        (await Queue.GetResultAsync("swept", CancellationToken.None)).ShouldNotBeNull().Deliveries.ShouldBe(2);
    }

    private static async Task ConditionAsync(Func<Task<bool>> condition, string what)
    {
        var waited = Stopwatch.StartNew();
        while (!await condition())
        {
            if (waited.Elapsed > Deadline)
            {
                throw new TimeoutException($"waited {Deadline.TotalSeconds:0} s until {what}");
            }

            await System.Threading.Tasks.Task.Delay(100);
        }
    }

    [Fact]
    public async Task Without_a_handover_the_broker_takes_a_long_task_back_at_its_consumer_timeout()
    {
        // The control for the test above: it shows the broker's timeout is real here, so that test can fail.
        await using var world = new RabbitMqQueueWorld(broker) { HandoverAfter = TimeSpan.FromMinutes(10) };
        var queue = await world.OpenAsync();
        await queue.PublishAsync(Pool, Task("long"), CancellationToken.None);
        await using var running = await queue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "running" }, CancellationToken.None);
        (await ReceiveAsync(running)).DeliveryCount.ShouldBe(1);
        var idleQueue = await world.OpenAsync();
        await using var idle = await idleQueue.ConsumeAsync(Pool, new ConsumeOptions { Worker = "idle" }, CancellationToken.None);

        // Either worker may get it back: the one that held it connects again after the broker closed its channel.
        var again = await await System.Threading.Tasks.Task.WhenAny(ReceiveAsync(running), ReceiveAsync(idle));

        again.Task.Id.ShouldBe("long");
        again.DeliveryCount.ShouldBe(2);
    }
}
