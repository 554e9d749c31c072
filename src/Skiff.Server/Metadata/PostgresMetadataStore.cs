using System.Text.Json;
using Npgsql;
using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>
/// The metadata store in a PostgreSQL database, for scale-out: any number of servers share one database
/// and see each other's writes at once. Every write is one transaction; every time it stores is taken
/// from the injected <see cref="TimeProvider"/>, never from the database's clock.
/// </summary>
/// <remarks>
/// <para>
/// Concurrency: SQLite's store can read, decide and write because one writer holds the file; here many
/// servers write at once, in READ COMMITTED transactions, so each write that decides on what it read is
/// made safe where it happens: conditional updates (<c>UPDATE … WHERE outcome = 'pending'</c>), inserts
/// that do nothing on a conflict, and unique constraints that turn a lost race into the same
/// <see cref="MetadataConflictException"/> the check before them throws. Each method says which it uses.
/// </para>
/// <para>
/// Failures: every Npgsql error surfaces as a <see cref="MetadataStoreException"/>. When PostgreSQL
/// restarts, the pooled connections die with it; a call that finds its connection dead before it began
/// to commit drops the pool and tries once more at once (its transaction was rolled back, so nothing
/// was half applied), and fails clearly if PostgreSQL is still away. Times are stored as
/// <c>timestamptz</c>, to the microsecond.
/// </para>
/// </remarks>
internal sealed partial class PostgresMetadataStore : IMetadataStore
{
    private readonly NpgsqlDataSource _dataSource;

    /// <summary>The pool the store uses, shared with <see cref="Coordination.PostgresServerBus"/> (its own table, its own LISTEN connection).</summary>
    internal NpgsqlDataSource DataSource => _dataSource;
    private readonly TimeProvider _time;
    private volatile bool _disposed;

    private PostgresMetadataStore(NpgsqlDataSource dataSource, string database, TimeProvider time)
    {
        _dataSource = dataSource;
        Database = database;
        _time = time;
    }

    /// <summary>Where the database is, as <c>postgresql://user@host:port/database</c> (never with a password): what messages name.</summary>
    public string Database { get; }

    /// <summary>
    /// Connects to the database <paramref name="connectionString"/> names (a <c>postgres://</c> URL or an
    /// Npgsql connection string, see <see cref="ParseConnectionString"/>) and applies the schema migrations
    /// it lacks, each in its own transaction, under an advisory lock so that servers starting at once do
    /// not migrate side by side.
    /// </summary>
    /// <param name="connectionString">The database; it must exist, and the user may create tables in it.</param>
    /// <param name="time">Stamps what the store decides itself: finish times, location updates, migrations.</param>
    /// <param name="cancellationToken">Stops opening; the store is then closed again.</param>
    /// <exception cref="MetadataStoreException">The connection string is not understood, the database cannot
    /// be reached or used, or it is from a newer Skiff (then it is left exactly as it was).</exception>
    public static async Task<PostgresMetadataStore> OpenAsync(string connectionString, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(time);
        var builder = ParseConnectionString(connectionString);
        var store = new PostgresMetadataStore(NpgsqlDataSource.Create(builder), Describe(builder), time);
        try
        {
            await store.MigrateAsync(cancellationToken).ConfigureAwait(false);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Closes the store's pooled connections. Operations already under way finish on their own connections.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }

    private Task<T> ReadAsync<T>(Func<NpgsqlConnection, Task<T>> read, CancellationToken cancellationToken) =>
        WithoutTransactionAsync(read, cancellationToken);

    /// <summary>
    /// Runs <paramref name="work"/> with no explicit transaction: a read, or one statement that is safe to
    /// run twice, since a connection that breaks under it is retried once even if it may have committed.
    /// </summary>
    private Task<T> WithoutTransactionAsync<T>(Func<NpgsqlConnection, Task<T>> work, CancellationToken cancellationToken) =>
        RunAsync(
            async (connection, _) => await work(connection).ConfigureAwait(false),
            transactional: false,
            cancellationToken);

    /// <summary>Runs <paramref name="write"/> in one transaction, committed when it returns, rolled back when it throws.</summary>
    private Task<T> WriteAsync<T>(Func<NpgsqlTransaction, Task<T>> write, CancellationToken cancellationToken) =>
        RunAsync((_, transaction) => write(transaction!), transactional: true, cancellationToken);

    private Task WriteAsync(Func<NpgsqlTransaction, Task> write, CancellationToken cancellationToken) =>
        WriteAsync(
            async transaction =>
            {
                await write(transaction).ConfigureAwait(false);
                return true;
            },
            cancellationToken);

    private async Task<T> RunAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction?, Task<T>> work, bool transactional, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        for (var attempt = 1; ; attempt++)
        {
            var committing = false;
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                if (!transactional)
                {
                    return await work(connection, null).ConfigureAwait(false);
                }

                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                var result = await work(connection, transaction).ConfigureAwait(false);
                committing = true;
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return result;
            }
            catch (NpgsqlException e) when (attempt == 1 && !committing && IsConnectionLost(e) && !cancellationToken.IsCancellationRequested)
            {
                // Idle pooled connections are dead too after a PostgreSQL restart; without this every one of
                // them would fail one call in turn. The failed attempt's transaction never committed.
                _dataSource.Clear();
            }
            catch (NpgsqlException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw IsConnectionLost(e)
                    ? MetadataStoreException.Unreachable(Database, e, mayHaveCommitted: committing)
                    : MetadataStoreException.Failed(Database, e);
            }
        }
    }

    /// <summary>
    /// The connection broke or the server is not taking connections (restarting, shutting down,
    /// starting up), as opposed to PostgreSQL refusing a statement.
    /// </summary>
    private static bool IsConnectionLost(NpgsqlException exception) => exception switch
    {
        // 08: connection exceptions; 57P01-57P03: admin or crash shutdown, cannot connect now;
        // 53300: too many connections.
        PostgresException postgres => postgres.SqlState.StartsWith("08", StringComparison.Ordinal)
            || postgres.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.TooManyConnections,
        _ => true,
    };

    private static NpgsqlCommand Sql(NpgsqlConnection connection, string text, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = text;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    private static NpgsqlCommand Sql(NpgsqlTransaction transaction, string text, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var command = Sql(transaction.Connection!, text, parameters);
        command.Transaction = transaction;
        return command;
    }

    // The helpers below run a command from Sql(...) and dispose it.

    private static async Task<int> ExecuteAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using (command.ConfigureAwait(false))
        {
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<bool> ExistsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using (command.ConfigureAwait(false))
        {
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
        }
    }

    private static async Task<IReadOnlyList<T>> ListAsync<T>(NpgsqlCommand command, Func<NpgsqlDataReader, T> map, CancellationToken cancellationToken)
    {
        await using (command.ConfigureAwait(false))
        {
            var items = new List<T>();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    items.Add(map(reader));
                }
            }

            return items;
        }
    }

    private static async Task<T?> SingleOrNullAsync<T>(NpgsqlCommand command, Func<NpgsqlDataReader, T> map, CancellationToken cancellationToken)
        where T : class
    {
        var items = await ListAsync(command, map, cancellationToken).ConfigureAwait(false);
        return items.Count > 0 ? items[0] : null;
    }

    // Npgsql writes a DateTimeOffset to timestamptz only with offset zero.
    private static DateTimeOffset Time(DateTimeOffset value) => value.ToUniversalTime();

    private static DateTimeOffset? Time(DateTimeOffset? value) => value?.ToUniversalTime();

    private DateTimeOffset Now() => _time.GetUtcNow().ToUniversalTime();

    private static DateTimeOffset ReadTime(NpgsqlDataReader reader, int ordinal) => reader.GetFieldValue<DateTimeOffset>(ordinal);

    private static DateTimeOffset? ReadNullableTime(NpgsqlDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : ReadTime(reader, ordinal);

    private static Digest ReadDigest(NpgsqlDataReader reader, int ordinal) => Digest.Parse(reader.GetString(ordinal));

    private static Digest? ReadNullableDigest(NpgsqlDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : ReadDigest(reader, ordinal);

    private static string? ReadNullableString(NpgsqlDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static string TimingsJson(IReadOnlyDictionary<string, long> timingsMs) => JsonSerializer.Serialize(timingsMs);

    private static Dictionary<string, long> ReadTimings(NpgsqlDataReader reader, int ordinal) =>
        JsonSerializer.Deserialize<Dictionary<string, long>>(reader.GetString(ordinal)) ?? [];
}
