namespace Skiff.Agent.Queues;

/// <summary>Where the broker is and how the RabbitMQ task queue uses it (docs/queues.md).</summary>
internal sealed record RabbitMqTaskQueueOptions
{
    /// <summary>The broker, as <c>amqp://user:password@host:port/vhost</c>.</summary>
    public required Uri Uri { get; init; }

    /// <summary>The broker's management API (<c>http://user:password@host:port/</c>), which alone knows a queue's unacknowledged count; <see cref="RabbitMqTaskQueue.CountAsync"/> needs it.</summary>
    public Uri? ManagementUri { get; init; }

    /// <summary>Deliveries of one task before it is dead-lettered. Default 5. Fixed per pool when its queue is first declared.</summary>
    public int DeliveryLimit { get; init; } = 5;

    /// <summary>
    /// How long a worker keeps a running task's delivery unacknowledged before the store takes custody of it (a lease the
    /// worker renews) and the delivery is acknowledged. Must be well under the broker's consumer timeout (RabbitMQ's
    /// default is 30 minutes), which closes a channel whose delivery stays unacknowledged longer. Default 10 minutes.
    /// </summary>
    public TimeSpan HandoverAfter { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>A task in the store's custody goes back to the broker this long after its worker last renewed it. Default 30 s.</summary>
    public TimeSpan CustodyLease { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a consumer hands back tasks whose custody ran out or that failed in custody. Default 5 s.</summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a publish keeps trying while the broker is away (restarting) before it fails. Default 60 s.</summary>
    public TimeSpan PublishDeadline { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How a task queue is given to <c>skiff server --task-queue</c> (docs/queues.md).</summary>
    public const string Syntax = "amqp://USER:PASSWORD@HOST[:PORT]/[VHOST][?management=http://USER:PASSWORD@HOST:PORT/]";

    /// <summary>
    /// Reads a <c>--task-queue</c> value: the broker's AMQP URI, with its management API as the <c>management</c> setting
    /// (default: the broker's host on RabbitMQ's management port, 15672, with the broker's credentials).
    /// </summary>
    /// <exception cref="InvalidTaskQueueException">It is not such a URI; the message leaves the password out.</exception>
    public static RabbitMqTaskQueueOptions Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!Uri.TryCreate(text.Trim(), UriKind.Absolute, out var given) || given.Scheme is not ("amqp" or "amqps") || given.Host.Length == 0)
        {
            throw new InvalidTaskQueueException($"expected a RabbitMQ address, {Syntax}");
        }

        var broker = new UriBuilder(given) { Query = "" }.Uri;
        Uri? management = null;
        foreach (var pair in given.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var (name, value) = pair.IndexOf('=', StringComparison.Ordinal) is var equals and >= 0
                ? (pair[..equals], Uri.UnescapeDataString(pair[(equals + 1)..]))
                : (pair, "");
            management = name switch
            {
                "management" when Uri.TryCreate(value, UriKind.Absolute, out var api) && api.Scheme is "http" or "https" => api,
                "management" => throw new InvalidTaskQueueException($"the management setting of {RabbitMqTaskQueue.Describe(broker)} is not an http:// or https:// URL"),
                _ => throw new InvalidTaskQueueException($"'{name}' is not a setting of {RabbitMqTaskQueue.Describe(broker)}; the only one is management"),
            };
        }

        // The management API alone knows a queue's unacknowledged count (/metrics); by default it is where a stock broker has it.
        var credentials = given.UserInfo.Split(':', 2);
        management ??= new UriBuilder("http", broker.Host, 15672)
        {
            UserName = Uri.UnescapeDataString(credentials[0]),
            Password = credentials.Length > 1 ? Uri.UnescapeDataString(credentials[1]) : "",
        }.Uri;
        return new RabbitMqTaskQueueOptions { Uri = broker, ManagementUri = management };
    }

    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Uri);
        if (Uri.Scheme is not ("amqp" or "amqps"))
        {
            throw new ArgumentException($"the RabbitMQ address '{Uri.GetLeftPart(UriPartial.Authority)}' is not an amqp:// or amqps:// URI; give one like amqp://user:password@host:5672/.", nameof(Uri));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(DeliveryLimit, 1, nameof(DeliveryLimit));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HandoverAfter, TimeSpan.Zero, nameof(HandoverAfter));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(CustodyLease, TimeSpan.Zero, nameof(CustodyLease));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(SweepInterval, TimeSpan.Zero, nameof(SweepInterval));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(PublishDeadline, TimeSpan.Zero, nameof(PublishDeadline));
    }
}

/// <summary>A <c>--task-queue</c> value that does not say where a broker is (the message names neither option nor variable).</summary>
internal sealed class InvalidTaskQueueException(string reason)
    : Skiff.Core.SkiffException($"{reason}.");
