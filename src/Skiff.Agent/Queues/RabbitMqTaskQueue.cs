using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;
using Skiff.Core.Queues;

namespace Skiff.Agent.Queues;

/// <summary>
/// The task queue scale-out uses: one RabbitMQ quorum queue per pool (<c>skiff.pool.NAME</c>), with a dead-letter queue
/// beside it (<c>skiff.pool.NAME.dead</c>). Publishes are persistent and confirmed by the broker; workers consume with
/// manual acknowledgements and a prefetch; results are recorded in the metadata store (<see cref="ITaskStore"/>) before a
/// delivery is acknowledged. See docs/queues.md for the guarantees and for how long tasks outlive the consumer timeout.
/// </summary>
/// <remarks>
/// Lives in the agent project, written first for workers that would consume from the broker directly; a server given
/// <c>--task-queue</c> publishes and consumes through it for its agents (Skiff.Server's TaskDispatcher). Every connection is made and remade here, not by the client's automatic recovery:
/// recovery does not bring back a channel the broker closed (the consumer timeout does that), and one path for every
/// loss (broker restart, network, channel closed) is easier to trust.
/// </remarks>
internal sealed class RabbitMqTaskQueue : ITaskQueue
{
    internal const string DeliveriesHeader = "skiff-deliveries";
    internal const string LastErrorHeader = "skiff-last-error";

    /// <summary>Which delivery reported the last error: a copy whose custody ran out carries an error from an earlier one.</summary>
    internal const string LastErrorDeliveryHeader = "skiff-last-error-delivery";

    private static readonly TimeSpan RetryPause = TimeSpan.FromMilliseconds(200);
    private readonly RabbitMqTaskQueueOptions _options;
    private readonly ITaskStore _store;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _publishGate = new(1, 1);
    private readonly ConcurrentDictionary<string, bool> _declared = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<RabbitMqTaskConsumer, byte> _consumers = new();
    private readonly HttpClient _management = new();
    private IConnection? _publishConnection;
    private IChannel? _publishChannel;
    private bool _disposed;

    public RabbitMqTaskQueue(RabbitMqTaskQueueOptions options, ITaskStore store, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _store = store;
        _time = time;
        if (options.ManagementUri is { UserInfo.Length: > 0 } management)
        {
            _management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.UnescapeDataString(management.UserInfo))));
        }
    }

    internal RabbitMqTaskQueueOptions Options => _options;

    internal ITaskStore Store => _store;

    internal TimeProvider Time => _time;

    internal static string QueueName(string pool) => $"skiff.pool.{pool}";

    internal static string DeadLetterQueueName(string pool) => $"skiff.pool.{pool}.dead";

    public async Task PublishAsync(string pool, TaskMessage task, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        ArgumentNullException.ThrowIfNull(task);
        ArgumentException.ThrowIfNullOrEmpty(task.Id, nameof(task));
        if (await _store.GetTaskResultAsync(task.Id, cancellationToken).ConfigureAwait(false) is not null)
        {
            return;
        }

        await PublishCopyAsync(QueueName(pool), pool, task, deliveries: 0, lastError: null, lastErrorDelivery: null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Publishes <paramref name="task"/> to <paramref name="queue"/>, persistent, and returns once the broker confirmed it,
    /// carrying how often it was delivered so far and its last error with the delivery that reported it. Tries again while
    /// the broker is away, up to <see cref="RabbitMqTaskQueueOptions.PublishDeadline"/>: a publish the broker did not confirm
    /// may have been lost.
    /// </summary>
    internal async Task PublishCopyAsync(string queue, string pool, TaskMessage task, int deliveries, string? lastError, int? lastErrorDelivery, CancellationToken cancellationToken)
    {
        var headers = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in task.Headers)
        {
            headers[name] = value;
        }

        headers[DeliveriesHeader] = deliveries;
        if (lastError is not null)
        {
            headers[LastErrorHeader] = lastError;
        }

        if (lastErrorDelivery is { } reportedBy)
        {
            headers[LastErrorDeliveryHeader] = reportedBy;
        }

        var properties = new BasicProperties { Persistent = true, MessageId = task.Id, Headers = headers };
        var started = _time.GetTimestamp();
        while (true)
        {
            await _publishGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                var channel = await PublishChannelAsync(cancellationToken).ConfigureAwait(false);
                await DeclareAsync(channel, pool, cancellationToken).ConfigureAwait(false);

                // mandatory: a message no queue takes is returned, and the confirmation of a returned one fails.
                await channel.BasicPublishAsync(string.Empty, queue, mandatory: true, properties, task.Payload, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (IsConnectionFailure(e) && !cancellationToken.IsCancellationRequested)
            {
                await DropPublishConnectionAsync().ConfigureAwait(false);
                if (_time.GetElapsedTime(started) >= _options.PublishDeadline)
                {
                    throw new TaskQueueUnavailableException(
                        $"task {task.Id} could not be published to RabbitMQ at {Describe(_options.Uri)} within {_options.PublishDeadline.TotalSeconds:0} s ({e.Message}); it may or may not be queued. Check that the broker is running, then publish it again (that is safe).",
                        e);
                }
            }
            finally
            {
                _publishGate.Release();
            }

            await Task.Delay(RetryPause, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<ITaskConsumer> ConsumeAsync(string pool, ConsumeOptions options, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ObjectDisposedException.ThrowIf(_disposed, this);
        var consumer = new RabbitMqTaskConsumer(this, pool, options);
        var started = _time.GetTimestamp();
        try
        {
            while (true)
            {
                try
                {
                    await consumer.StartAsync(cancellationToken).ConfigureAwait(false);
                    break;
                }
                catch (Exception e) when (IsConnectionFailure(e) && !cancellationToken.IsCancellationRequested && _time.GetElapsedTime(started) < _options.PublishDeadline)
                {
                    // A worker that starts while the broker restarts (it refuses a login, or a quorum queue's members are
                    // still starting: INTERNAL_ERROR) waits for it, as a consumer that lost its connection does, for as
                    // long as a publish would.
                }

                await Task.Delay(RetryPause, _time, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            await consumer.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        _consumers[consumer] = 0;
        return consumer;
    }

    internal void Forget(RabbitMqTaskConsumer consumer) => _consumers.TryRemove(consumer, out _);

    /// <summary>
    /// Ready and unacknowledged messages of the pool's queue, as the management API last sampled them, less the copies of
    /// calls canceled while they waited there (<see cref="ITaskStore.RecordCanceledOnBrokerAsync"/>: a worker that takes
    /// one only settles it), plus the tasks in the store's custody (running long, or failed there and about to go back to
    /// the broker).
    /// </summary>
    public async Task<PoolTaskCounts> CountAsync(string pool, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        var management = _options.ManagementUri
            ?? throw new InvalidOperationException("counting a RabbitMQ queue's unacknowledged tasks needs the broker's management API; give its address (ManagementUri).");
        var url = new Uri(management, $"api/queues/{Uri.EscapeDataString(VirtualHost)}/{Uri.EscapeDataString(QueueName(pool))}");
        long ready = 0, unacknowledged = 0;
        using (var response = await _management.GetAsync(url, cancellationToken).ConfigureAwait(false))
        {
            if (response.StatusCode != System.Net.HttpStatusCode.NotFound)
            {
                response.EnsureSuccessStatusCode();
                using var document = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), cancellationToken: cancellationToken).ConfigureAwait(false);
                ready = document.RootElement.TryGetProperty("messages_ready", out var r) ? r.GetInt64() : 0;
                unacknowledged = document.RootElement.TryGetProperty("messages_unacknowledged", out var u) ? u.GetInt64() : 0;
            }
        }

        // Taken off the ready first, where such a copy waits; never below zero, as the sample may predate the copies.
        var canceled = await _store.CountBrokerCopiesAsync(pool, cancellationToken).ConfigureAwait(false);
        var canceledReady = Math.Min(canceled, ready);
        ready -= canceledReady;
        unacknowledged = Math.Max(0, unacknowledged - (canceled - canceledReady));
        var custody = await _store.CountTasksAsync(pool, cancellationToken).ConfigureAwait(false);
        return new PoolTaskCounts(ready + custody.Ready, unacknowledged + custody.InFlight);
    }

    public Task<TaskResult?> GetResultAsync(string taskId, CancellationToken cancellationToken) => _store.GetTaskResultAsync(taskId, cancellationToken);

    /// <summary>What a crash of this process does: every connection drops at once, nothing is acknowledged or handed back.</summary>
    internal async Task CrashAsync()
    {
        foreach (var consumer in _consumers.Keys)
        {
            await consumer.CrashAsync().ConfigureAwait(false);
        }

        await DropPublishConnectionAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var consumer in _consumers.Keys)
        {
            await consumer.DisposeAsync().ConfigureAwait(false);
        }

        await _publishGate.WaitAsync().ConfigureAwait(false);
        try
        {
            _disposed = true;
            await DropPublishConnectionAsync().ConfigureAwait(false);
        }
        finally
        {
            _publishGate.Release();
        }

        _management.Dispose();
    }

    private string VirtualHost => _options.Uri.AbsolutePath is "/" or "" ? "/" : Uri.UnescapeDataString(_options.Uri.AbsolutePath[1..]);

    internal Task<IConnection> ConnectAsync(string name, CancellationToken cancellationToken) => ConnectAsync(_options.Uri, name, cancellationToken);

    /// <summary>
    /// Connects to the broker once and lets go: a server checks its task queue this way as it starts, so that a wrong
    /// address or password stops the start, saying so, before anything is written.
    /// </summary>
    /// <exception cref="TaskQueueUnavailableException">The broker cannot be reached or refused the login.</exception>
    internal static async Task CheckReachableAsync(RabbitMqTaskQueueOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        try
        {
            await using var connection = await ConnectAsync(options.Uri, "skiff check", cancellationToken).ConfigureAwait(false);
            await connection.CloseAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsConnectionFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw new TaskQueueUnavailableException(
                $"the task queue's RabbitMQ at {Describe(options.Uri)} cannot be reached ({e.Message}{(e.InnerException is { } inner ? ": " + inner.Message : "")}). Check that the broker runs and that the address, user and password are right, then start the server again.",
                e);
        }

        // The management API too: without it no pool can be counted, so a pool at zero would never be woken and /metrics
        // would leave the pools out, each only a warning in the log. A wrong port here (the default is 15672) is a start-up error.
        if (options.ManagementUri is { } management)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(management, "api/overview"));
            if (management.UserInfo.Length > 0)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.UnescapeDataString(management.UserInfo))));
            }

            string? problem;
            try
            {
                using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                problem = response.IsSuccessStatusCode ? null : $"it answered {(int)response.StatusCode} {response.ReasonPhrase}";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                problem = e.Message;
            }

            if (problem is not null)
            {
                throw new TaskQueueUnavailableException(
                    $"the management API of the task queue's RabbitMQ at {management.Scheme}://{management.Host}:{management.Port.ToString(CultureInfo.InvariantCulture)}/ cannot be used ({problem}); the server counts each pool's tasks there, to scale pools and for /metrics. Give its address in the task queue's URI, ?management=http://USER:PASSWORD@HOST:PORT/ (scripts/rabbitmq.sh start prints it), or enable the broker's management plugin, then start the server again.");
            }
        }
    }

    private static async Task<IConnection> ConnectAsync(Uri uri, string name, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory
        {
            Uri = uri,
            ClientProvidedName = name,
            AutomaticRecoveryEnabled = false,
            TopologyRecoveryEnabled = false,
            // A dead peer is noticed within two heartbeats.
            RequestedHeartbeat = TimeSpan.FromSeconds(10),
            RequestedConnectionTimeout = TimeSpan.FromSeconds(10),
        };
        return await factory.CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Declares the pool's quorum queue and its dead-letter queue (once per process; declaring is idempotent, and a
    /// broker restart keeps them). The broker's own delivery limit is one above the queue's: the consumer, which knows
    /// the last error, dead-letters a task at the limit; the broker's is the backstop for a task whose consumers die
    /// before they can (docs/queues.md).
    /// </summary>
    internal async Task DeclareAsync(IChannel channel, string pool, CancellationToken cancellationToken)
    {
        if (_declared.ContainsKey(pool))
        {
            return;
        }

        await channel.QueueDeclareAsync(
            DeadLetterQueueName(pool),
            durable: true,
            exclusive: false,
            autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-queue-type"] = "quorum" },
            cancellationToken: cancellationToken).ConfigureAwait(false);
        await channel.QueueDeclareAsync(
            QueueName(pool),
            durable: true,
            exclusive: false,
            autoDelete: false,
            arguments: new Dictionary<string, object?>
            {
                ["x-queue-type"] = "quorum",
                ["x-delivery-limit"] = _options.DeliveryLimit + 1,
                ["x-dead-letter-exchange"] = string.Empty,
                ["x-dead-letter-routing-key"] = DeadLetterQueueName(pool),
            },
            cancellationToken: cancellationToken).ConfigureAwait(false);
        _declared[pool] = true;
    }

    private async Task<IChannel> PublishChannelAsync(CancellationToken cancellationToken)
    {
        if (_publishChannel is { IsOpen: true } open)
        {
            return open;
        }

        await DropPublishConnectionAsync().ConfigureAwait(false);
        _publishConnection = await ConnectAsync("skiff publisher", cancellationToken).ConfigureAwait(false);

        // Tracking: BasicPublishAsync returns once the broker confirmed the message, and throws if it was refused.
        _publishChannel = await _publishConnection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken).ConfigureAwait(false);
        return _publishChannel;
    }

    private async Task DropPublishConnectionAsync()
    {
        var connection = _publishConnection;
        _publishConnection = null;
        _publishChannel = null;
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

    /// <summary>The broker went away, refused a connection, or closed the channel or connection: worth trying again.</summary>
    internal static bool IsConnectionFailure(Exception exception) =>
        exception is RabbitMQClientException or IOException or SocketException or TimeoutException or ObjectDisposedException;

    /// <summary>The broker's address without credentials, for messages.</summary>
    internal static string Describe(Uri uri) =>
        $"{uri.Scheme}://{uri.Host}:{(uri.Port > 0 ? uri.Port : uri.Scheme == "amqps" ? 5671 : 5672).ToString(CultureInfo.InvariantCulture)}";
}
