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
