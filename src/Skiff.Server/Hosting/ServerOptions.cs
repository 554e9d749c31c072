using Skiff.Core.Archives;
using Skiff.Server.Blobs;

namespace Skiff.Server.Hosting;

/// <summary>Where the server keeps its data and how it listens.</summary>
internal sealed class ServerOptions
{
    /// <summary>Holds <c>skiff.db</c> (metadata, unless <see cref="Metadata"/> names a database), <c>blobs/</c> (the blob store, unless <see cref="S3Blobs"/>) and <c>token</c>.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>
    /// Where metadata is kept: null for SQLite in <see cref="DatabasePath"/> (one server), or a PostgreSQL
    /// database as a <c>postgres://user@host:port/database</c> URL or an Npgsql connection string, which any
    /// number of servers can share. Checked when the server starts.
    /// </summary>
    public string? Metadata { get; init; }

    /// <summary>Where blobs are kept when not in <see cref="BlobDirectory"/>: an S3 bucket. Default null (the data folder).</summary>
    public S3BlobStoreOptions? S3Blobs { get; init; }

    /// <summary>
    /// The queue deployed task calls travel on (docs/queues.md): null (the default) for the metadata store's own, or a
    /// RabbitMQ broker, which any number of servers can share. The broker is checked when the server starts.
    /// </summary>
    public Skiff.Agent.Queues.RabbitMqTaskQueueOptions? RabbitMqTasks { get; init; }

    /// <summary>The port on 127.0.0.1; 0 picks a free one.</summary>
    public int Port { get; init; }

    /// <summary>The address to listen on. Default 127.0.0.1: exposing the server is a deliberate choice.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>The largest request body accepted, in bytes: blob uploads. Default 4 GiB.</summary>
    public long MaxBlobBytes { get; init; } = 4L * 1024 * 1024 * 1024;

    /// <summary>
    /// The most bytes one uploaded archive blob may expand to, in bytes. Default 1 GiB: a gzip of 1 GiB of zeros
    /// is a 1 MiB upload that would take a GiB of every agent's disk; real packages and sources stay far below.
    /// </summary>
    public long MaxUnpackedBlobBytes { get; init; } = 1L * 1024 * 1024 * 1024;

    /// <summary>How uploaded archives are checked: <see cref="ArchiveLimits.Default"/> with <see cref="MaxUnpackedBlobBytes"/>.</summary>
    public ArchiveLimits UploadLimits => ArchiveLimits.Default with
    {
        MaxTotalBytes = MaxUnpackedBlobBytes,
        MaxEntryBytes = Math.Min(ArchiveLimits.Default.MaxEntryBytes, MaxUnpackedBlobBytes),
    };

    /// <summary>The largest JSON request body accepted, in bytes. Default 4 MiB.</summary>
    public long MaxJsonBytes { get; init; } = 4L * 1024 * 1024;

    /// <summary>How long a deployment waits for its agent to report the outcome. Default 3 minutes.</summary>
    public TimeSpan ActivationTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>
    /// How long an agent may stay disconnected before its runs are recorded failed and its locations are placed
    /// on other agents. Within it, an agent that reconnects resends the events the server missed, its runs go on,
    /// and it keeps its locations. Default 1 minute.
    /// </summary>
    public TimeSpan AgentGracePeriod { get; init; } = DefaultAgentGracePeriod;

    /// <summary>
    /// How long a pool deployed with <c>--replicas MIN..MAX</c> goes without ready or in-flight tasks before it is scaled
    /// down to MIN (docs/tasks.md, "Scaling a pool"). Default 5 minutes.
    /// </summary>
    public TimeSpan PoolIdlePeriod { get; init; } = DefaultPoolIdlePeriod;

    /// <summary>Five minutes: a pool called every few minutes stays warm; one left alone frees its agents.</summary>
    public static readonly TimeSpan DefaultPoolIdlePeriod = TimeSpan.FromMinutes(5);

    /// <summary>One minute: long enough for an agent or server restart, short enough that work moves on.</summary>
    public static readonly TimeSpan DefaultAgentGracePeriod = TimeSpan.FromMinutes(1);

    /// <summary>
    /// With several servers on one PostgreSQL database: how long a server may go without a heartbeat before the
    /// others take it for dead, fail the deployments it was driving and stop passing it requests for its agents.
    /// It heartbeats four times in this period. Default 10 s. Unused with SQLite (one server).
    /// </summary>
    public TimeSpan ServerGracePeriod { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The average rate, in bytes per second, at which the background scrub re-hashes the blob store (Blobs/Scrubber.cs);
    /// 0 turns it off. Default 8 MiB/s.
    /// </summary>
    public long ScrubBytesPerSecond { get; init; } = Blobs.Scrubber.DefaultBytesPerSecond;

    /// <summary>
    /// The most run events stored in one transaction (docs/events.md). Default <see cref="Runs.RunEventWriter.DefaultBatchSize"/>;
    /// 1 stores each event on its own, as before group commit (the events benchmark compares the two).
    /// </summary>
    public int EventBatchSize { get; init; } = Runs.RunEventWriter.DefaultBatchSize;

    public string DatabasePath => Path.Combine(DataDirectory, "skiff.db");

    public string BlobDirectory => Path.Combine(DataDirectory, "blobs");

    public string TokenPath => Path.Combine(DataDirectory, "token");

    /// <summary>
    /// The key that seals the locations' secrets at rest (docs/env.md): a file of 64 hex digits. Null (the default) is
    /// <c>secrets.key</c> in the data folder, made at the first start. Servers sharing a metadata store need the same key,
    /// so each is given the same file; one given here must exist (a new key could not open what the others sealed).
    /// </summary>
    public string? SecretsKeyFile { get; init; }

    /// <summary>Where the secrets key is read from: <see cref="SecretsKeyFile"/>, or <c>secrets.key</c> in the data folder.</summary>
    public string SecretsKeyPath => SecretsKeyFile ?? Path.Combine(DataDirectory, "secrets.key");

    /// <summary>
    /// Where the server's logs go (docs/logs.md); the caller owns it and disposes it after the server. Default: nowhere,
    /// as tests and embedders that pass none want.
    /// </summary>
    public ILoggerFactory LoggerFactory { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
}
