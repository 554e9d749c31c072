using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using Skiff.Core.Queues;

namespace Skiff.Agent.Queues;

/// <summary>
/// One worker's subscription to a pool's RabbitMQ queue: its own connection and channel, a prefetch, manual
/// acknowledgements. When the broker or the channel goes away it connects again until it is disposed; what it held
/// unacknowledged then is delivered again by the broker, and a delivery whose task has a result (or is in the store's
/// custody) by the time it arrives is acknowledged without being handed to the worker.
/// </summary>
internal sealed class RabbitMqTaskConsumer : ITaskConsumer
{
    /// <summary>Ends the name a sweep leases tasks under (the consumer's own name, then this), told apart from a worker's custody.</summary>
    internal const string SweepSuffix = "/sweep";

    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan ReconnectPause = TimeSpan.FromMilliseconds(250);
    private readonly RabbitMqTaskQueue _queue;
    private readonly string _pool;
    private readonly ConsumeOptions _options;
    private readonly string _name;
    private readonly Channel<TaskDelivery> _incoming = Channel.CreateUnbounded<TaskDelivery>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, Held> _held = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopped = new();
    private readonly SemaphoreSlim _connectGate = new(1, 1);
    private readonly ITimer _ticker;
    private IConnection? _connection;
    private IChannel? _channel;
    private AsyncEventingBasicConsumer? _consumer;
    private string? _consumerTag;
    private int _generation;
    private TaskCompletionSource _settled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _ticking;
    private long _lastSweep;

    public RabbitMqTaskConsumer(RabbitMqTaskQueue queue, string pool, ConsumeOptions options)
    {
        _queue = queue;
        _pool = pool;
        _options = options;
        _name = $"{options.Worker}/{Guid.NewGuid():N}";
        _lastSweep = queue.Time.GetTimestamp();
        _ticker = queue.Time.CreateTimer(_ => OnTick(), null, Tick, Tick);
    }

    private ITaskStore Store => _queue.Store;

    private RabbitMqTaskQueueOptions QueueOptions => _queue.Options;

    private TimeProvider Time => _queue.Time;

    internal Task StartAsync(CancellationToken cancellationToken) => ConnectAsync(cancellationToken);

    public async ValueTask<TaskDelivery> ReceiveAsync(CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopped.Token);
        while (true)
        {
            var delivery = await _incoming.Reader.ReadAsync(linked.Token).ConfigureAwait(false);
            var tag = (Tag)delivery.Token!;
            if (tag.Generation != Volatile.Read(ref _generation))
            {
                // Its channel is gone; the broker delivers it again on the new one.
                continue;
            }

            // Looked up on every delivery, the first included: a call canceled while its copy waited here (through any server,
            // before or after a restart) or published twice (re-sent through a second server) has its result already.
            var done = await Store.GetTaskResultAsync(delivery.Task.Id, linked.Token).ConfigureAwait(false);
            if (done is not null || (delivery.DeliveryCount > 1 && await InCustodyAsync(delivery.Task.Id, linked.Token).ConfigureAwait(false)))
            {
                // Done already, or running in the store's custody: this copy is redundant, and running it again would be wrong.
                if (done is not null)
                {
                    // Recorded again, which keeps the first result and settles this copy (a call canceled while it waited here).
                    await Store.RecordTaskResultAsync(done, linked.Token).ConfigureAwait(false);
                }

                await AckAsync(tag).ConfigureAwait(false);
                continue;
            }

            if (delivery.DeliveryCount > QueueOptions.DeliveryLimit)
            {
                // The last allowed delivery ended without a word from its worker (it died, or lost its connection).
                await DeadLetterAsync(delivery, TaskQueueErrors.LeaseRanOut(delivery.Task.Id, delivery.DeliveryCount - 1, delivery.LastError), linked.Token).ConfigureAwait(false);
                continue;
            }

            // A subscription made before some of the held tasks went into custody may bring more than the room left.
            while (_held.Count >= _options.Prefetch)
            {
                await Volatile.Read(ref _settled).Task.WaitAsync(linked.Token).ConfigureAwait(false);
            }

            _held[delivery.Task.Id] = new Held(delivery, Time.GetTimestamp());
            return delivery;
        }
    }

    public async Task<bool> CompleteAsync(TaskDelivery delivery, byte[] result, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        ArgumentNullException.ThrowIfNull(result);

        // Recorded first (this also ends the store's custody, if it had it), acknowledged after: acks late.
        var recorded = await Store.RecordTaskResultAsync(
            new TaskResult(delivery.Task.Id, _pool, Succeeded: true, result, Error: null, delivery.DeliveryCount, Time.GetUtcNow()),
            cancellationToken).ConfigureAwait(false);
        if (_held.TryRemove(delivery.Task.Id, out var held))
        {
            Settled();
            if (!held.InCustody)
            {
                await AckAsync((Tag)delivery.Token!).ConfigureAwait(false);
            }

            await AdjustFlowAsync().ConfigureAwait(false);
        }

        return recorded;
    }

    public async Task FailAsync(TaskDelivery delivery, string error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        ArgumentException.ThrowIfNullOrEmpty(error);
        if (!_held.TryRemove(delivery.Task.Id, out var held))
        {
            return;
        }

        Settled();
        try
        {
            await SettleFailureAsync(delivery, held, error, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await AdjustFlowAsync().ConfigureAwait(false);
        }
    }

    private void Settled() => Interlocked.Exchange(ref _settled, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task SettleFailureAsync(TaskDelivery delivery, Held held, string error, CancellationToken cancellationToken)
    {
        if (held.InCustody)
        {
            // The store has it: it is ready there again (or dead-lettered), and a sweep hands it back to the broker.
            await Store.FailTaskAsync(delivery.Task.Id, _name, error, QueueOptions.DeliveryLimit, cancellationToken).ConfigureAwait(false);
            return;
        }

        var tag = (Tag)delivery.Token!;
        if (delivery.DeliveryCount >= QueueOptions.DeliveryLimit)
        {
            await DeadLetterAsync(delivery, error, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (tag.Generation != Volatile.Read(ref _generation))
        {
            // The broker took it back with the channel and delivers it again; a copy now would be a second one.
            return;
        }

        // A nack would bring it back unchanged; a copy carries the error and the count, and the original is acknowledged
        // once the copy is confirmed. A crash between the two leaves two copies: the result still counts once.
        await _queue.PublishCopyAsync(RabbitMqTaskQueue.QueueName(_pool), _pool, delivery.Task, delivery.DeliveryCount, error, delivery.DeliveryCount, cancellationToken).ConfigureAwait(false);
        await AckAsync(tag).ConfigureAwait(false);
    }

    /// <summary>Records the task's failure as its result (what the caller fails with), keeps a copy in the dead-letter queue for people to look at, and acknowledges it.</summary>
    private async Task DeadLetterAsync(TaskDelivery delivery, string error, CancellationToken cancellationToken)
    {
        await Store.RecordTaskResultAsync(
            new TaskResult(delivery.Task.Id, _pool, Succeeded: false, Payload: null, error, delivery.DeliveryCount, Time.GetUtcNow()),
            cancellationToken).ConfigureAwait(false);
        await _queue.PublishCopyAsync(RabbitMqTaskQueue.DeadLetterQueueName(_pool), _pool, delivery.Task, delivery.DeliveryCount, error, delivery.DeliveryCount, cancellationToken).ConfigureAwait(false);
        await AckAsync((Tag)delivery.Token!).ConfigureAwait(false);
    }

    private async Task AckAsync(Tag tag)
    {
        var channel = _channel;
        if (channel is null || tag.Generation != Volatile.Read(ref _generation))
        {
            return;
        }

        try
        {
            await channel.BasicAckAsync(tag.DeliveryTag, multiple: false).ConfigureAwait(false);
        }
        catch (Exception e) when (RabbitMqTaskQueue.IsConnectionFailure(e))
        {
            // The broker delivers it again; its result is recorded, so that delivery is acknowledged unseen.
        }
    }

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        await _connectGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var generation = Interlocked.Increment(ref _generation);
            await DropConnectionAsync().ConfigureAwait(false);
            var connection = await _queue.ConnectAsync($"skiff worker {_name}", cancellationToken).ConfigureAwait(false);
            _connection = connection;
            var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            _channel = channel;
            await _queue.DeclareAsync(channel, _pool, cancellationToken).ConfigureAwait(false);
            var consumer = new AsyncEventingBasicConsumer(channel);
            consumer.ReceivedAsync += (_, delivered) => OnDeliveredAsync(generation, delivered);
            channel.ChannelShutdownAsync += (_, _) =>
            {
                OnLost(generation);
                return Task.CompletedTask;
            };
            _consumer = consumer;
            _consumerTag = null;
            await AdjustFlowAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _connectGate.Release();
        }
    }

    /// <summary>
    /// Keeps what the worker holds within its prefetch when some of it is in the store's custody (acknowledged, so the
    /// broker no longer counts it). The broker's prefetch (basic.qos, per consumer) applies to a subscription as it is
    /// made, so a worker with no room cancels its subscription, and one that has room again subscribes anew with the room
    /// it has. Called with the connect gate held.
    /// </summary>
    private async Task AdjustFlowAsync(CancellationToken cancellationToken)
    {
        if (_channel is not { IsOpen: true } channel || _consumer is null)
        {
            return;
        }

        var room = _options.Prefetch - _held.Count;
        if (room <= 0)
        {
            if (_consumerTag is { } tag)
            {
                _consumerTag = null;
                await channel.BasicCancelAsync(tag, noWait: false, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        if (_consumerTag is null)
        {
            await channel.BasicQosAsync(0, (ushort)room, global: false, cancellationToken).ConfigureAwait(false);
            _consumerTag = await channel.BasicConsumeAsync(RabbitMqTaskQueue.QueueName(_pool), autoAck: false, _consumer, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task AdjustFlowAsync()
    {
        await _connectGate.WaitAsync().ConfigureAwait(false);
        try
        {
            await AdjustFlowAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (RabbitMqTaskQueue.IsConnectionFailure(e))
        {
            // The connection is going; connecting again sets the flow from what is held then.
        }
        finally
        {
            _connectGate.Release();
        }
    }

    private Task OnDeliveredAsync(int generation, BasicDeliverEventArgs delivered)
    {
        IDictionary<string, object?> headers = delivered.BasicProperties.Headers ?? new Dictionary<string, object?>();
        var taskHeaders = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in headers)
        {
            if (name is not (RabbitMqTaskQueue.DeliveriesHeader or RabbitMqTaskQueue.LastErrorHeader or RabbitMqTaskQueue.LastErrorDeliveryHeader) && !name.StartsWith("x-", StringComparison.Ordinal) && Text(value) is { } text)
            {
                taskHeaders[name] = text;
            }
        }

        var before = Number(Header(headers, RabbitMqTaskQueue.DeliveriesHeader)) ?? 0;

        // Quorum queues count the times a message came back (a nack, a closed channel) in x-delivery-count.
        var returned = Number(Header(headers, "x-delivery-count")) ?? (delivered.Redelivered ? 1 : 0);
        var lastError = Text(Header(headers, RabbitMqTaskQueue.LastErrorHeader));

        // The error stays with the message (the dead-letter text) with the delivery that reported it, so that a delivery
        // after one the broker took back (x-delivery-count) or whose custody ran out is not told it as its reason. A copy
        // with no such header, published before there was one, came from the failed delivery that skiff-deliveries counts.
        var lastErrorDelivery = lastError is null ? (long?)null : Number(Header(headers, RabbitMqTaskQueue.LastErrorDeliveryHeader)) ?? before;
        var task = new TaskMessage(delivered.BasicProperties.MessageId ?? string.Empty, delivered.Body.ToArray(), taskHeaders);
        _incoming.Writer.TryWrite(new TaskDelivery(_pool, task, (int)(before + returned + 1), lastError, (int?)lastErrorDelivery) { Token = new Tag(generation, delivered.DeliveryTag) });
        return Task.CompletedTask;
    }

    /// <summary>The channel or connection closed under the consumer (broker restart, consumer timeout, network): connect again until it works or the consumer stops.</summary>
    private void OnLost(int generation)
    {
        if (_stopped.IsCancellationRequested || generation != Volatile.Read(ref _generation))
        {
            return;
        }

        _ = ReconnectAsync();

        async Task ReconnectAsync()
        {
            while (!_stopped.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(ReconnectPause, Time, _stopped.Token).ConfigureAwait(false);
                    await ConnectAsync(_stopped.Token).ConfigureAwait(false);
                    return;
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (Exception) when (!_stopped.IsCancellationRequested)
                {
                    // The broker is still away, or still starting (it may refuse a login or a declaration until it has
                    // booted): try again after the pause. A consumer that stopped trying would be lost to its pool.
                }
            }
        }
    }

    /// <summary>
    /// Every tick: hands a task that ran past <see cref="RabbitMqTaskQueueOptions.HandoverAfter"/> to the store's custody
    /// and acknowledges its delivery, before the broker's consumer timeout would close the channel; renews the custody of
    /// the tasks it holds that way; and now and then sends tasks whose custody ran out (their worker died) or that failed
    /// in custody back to the broker.
    /// </summary>
    private void OnTick()
    {
        if (_stopped.IsCancellationRequested || Interlocked.Exchange(ref _ticking, 1) == 1)
        {
            return;
        }

        _ = TickAsync();

        async Task TickAsync()
        {
            try
            {
                var token = _stopped.Token;
                foreach (var (id, held) in _held)
                {
                    if (!held.InCustody && Time.GetElapsedTime(held.Since) >= QueueOptions.HandoverAfter)
                    {
                        // Held by the store first, then the broker's prefetch lowered (so the freed slot brings no task this
                        // worker cannot take), then acknowledged.
                        await Store.HoldTaskAsync(held.Delivery, _name, QueueOptions.CustodyLease, token).ConfigureAwait(false);
                        _held[id] = held with { InCustody = true, Renewed = Time.GetTimestamp() };
                        await AdjustFlowAsync().ConfigureAwait(false);
                        await AckAsync((Tag)held.Delivery.Token!).ConfigureAwait(false);
                    }
                    else if (held.InCustody && Time.GetElapsedTime(held.Renewed) >= QueueOptions.CustodyLease / 3)
                    {
                        await Store.RenewTaskLeaseAsync(id, _name, QueueOptions.CustodyLease, token).ConfigureAwait(false);
                        _held[id] = held with { Renewed = Time.GetTimestamp() };
                    }
                }

                if (Time.GetElapsedTime(Interlocked.Read(ref _lastSweep)) >= QueueOptions.SweepInterval)
                {
                    Interlocked.Exchange(ref _lastSweep, Time.GetTimestamp());
                    await SweepAsync(token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OperationCanceledException || RabbitMqTaskQueue.IsConnectionFailure(e))
            {
                // The next tick tries again. Custody not renewed for a whole lease goes back to the broker: at least once.
            }
            catch (Exception)
            {
                // A store error (the metadata store away) is tried again on the next tick, like the ones above.
            }
            finally
            {
                Volatile.Write(ref _ticking, 0);
            }
        }
    }

    /// <summary>
    /// Whether a worker holds the task in the store's custody, which makes a copy from the broker redundant. Not while a
    /// sweep holds it: the sweep leases it to send this very copy back and takes it out of the store only after the broker
    /// confirmed the copy, so the copy can arrive first, and dropping it then would lose the task.
    /// </summary>
    private async Task<bool> InCustodyAsync(string taskId, CancellationToken cancellationToken) =>
        await Store.GetTaskHolderAsync(taskId, cancellationToken).ConfigureAwait(false) is { } holder
        && !holder.EndsWith(SweepSuffix, StringComparison.Ordinal);

    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        var sweeper = _name + SweepSuffix;
        var due = await Store.LeaseTasksAsync(_pool, sweeper, QueueOptions.CustodyLease, 20, QueueOptions.DeliveryLimit, cancellationToken).ConfigureAwait(false);
        foreach (var task in due)
        {
            // The lease counted a delivery that the broker's copy will count again.
            await _queue.PublishCopyAsync(RabbitMqTaskQueue.QueueName(_pool), _pool, task.Task, task.DeliveryCount - 1, task.LastError, task.LastErrorDelivery, cancellationToken).ConfigureAwait(false);
            await Store.RemoveTaskAsync(task.Task.Id, sweeper, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>What a crash does: the connection drops, nothing is acknowledged, handed back or renewed.</summary>
    internal async Task CrashAsync()
    {
        await _stopped.CancelAsync().ConfigureAwait(false);
        await _ticker.DisposeAsync().ConfigureAwait(false);
        await DropConnectionAsync().ConfigureAwait(false);
        _queue.Forget(this);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopped.IsCancellationRequested)
        {
            return;
        }

        await _stopped.CancelAsync().ConfigureAwait(false);
        await _ticker.DisposeAsync().ConfigureAwait(false);
        await _connectGate.WaitAsync().ConfigureAwait(false);
        try
        {
            // Closing the channel gives back what it holds unacknowledged; the broker delivers it to another worker.
            if (_channel is { IsOpen: true } channel)
            {
                try
                {
                    await channel.CloseAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (RabbitMqTaskQueue.IsConnectionFailure(e))
                {
                    // Gone already: the broker took them back then.
                }
            }

            await DropConnectionAsync().ConfigureAwait(false);
        }
        finally
        {
            _connectGate.Release();
        }

        _queue.Forget(this);
    }

    private async Task DropConnectionAsync()
    {
        var connection = _connection;
        _connection = null;
        _channel = null;
        if (connection is not null)
        {
            try
            {
                await connection.AbortAsync().ConfigureAwait(false);
            }
            finally
            {
                connection.Dispose();
            }
        }
    }

    private static object? Header(IDictionary<string, object?> headers, string name) => headers.TryGetValue(name, out var value) ? value : null;

    private static string? Text(object? value) => value switch
    {
        byte[] bytes => Encoding.UTF8.GetString(bytes),
        string text => text,
        _ => null,
    };

    private static long? Number(object? value) => value switch
    {
        int number => number,
        long number => number,
        short number => number,
        byte number => number,
        byte[] text when long.TryParse(Encoding.UTF8.GetString(text), NumberStyles.None, CultureInfo.InvariantCulture, out var number) => number,
        _ => null,
    };

    private sealed record Tag(int Generation, ulong DeliveryTag);

    private sealed record Held(TaskDelivery Delivery, long Since)
    {
        public bool InCustody { get; init; }

        public long Renewed { get; init; }
    }
}
