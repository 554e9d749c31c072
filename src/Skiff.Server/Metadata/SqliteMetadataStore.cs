using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>
/// The metadata store in one SQLite file, for embedded mode and single-server installs. Durable across
/// restarts, crashes and power cuts: every write is one transaction, committed to the write-ahead log
/// and synced to disk before it returns.
/// </summary>
/// <remarks>
/// <para>
/// Concurrency: every operation opens its own pooled connection, so reads run side by side and read a
/// consistent snapshot while a write is under way (WAL). SQLite admits one writer at a time, so writes
/// from this process queue on a <see cref="SemaphoreSlim"/>, asynchronously, before they open their
/// transaction; left to SQLite's busy handler they would sleep on thread-pool threads and retry. The busy
/// timeout still covers another process holding the write lock (a second server on the same file, the
/// sqlite3 shell).
/// </para>
/// <para>
/// Microsoft.Data.Sqlite does all its work synchronously (its async methods only check cancellation
/// first), so connections, commands and readers are disposed with plain <c>using</c>.
/// </para>
/// </remarks>
internal sealed partial class SqliteMetadataStore : IMetadataStore
{
    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private volatile bool _disposed;

    private SqliteMetadataStore(string databasePath, TimeProvider time)
    {
        DatabasePath = databasePath;
        _time = time;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
        }.ToString();
    }

    /// <summary>The database file, as a full path.</summary>
    public string DatabasePath { get; }

    /// <summary>
    /// Opens the database at <paramref name="path"/>, creating it and its folder if needed, switches it
    /// to write-ahead logging and applies the schema migrations it lacks, each in its own transaction.
    /// Opening the same file again sees everything written before.
    /// </summary>
    /// <param name="path">The database file; relative paths are taken from the current folder.</param>
    /// <param name="time">Stamps what the store decides itself: finish times, location updates, migrations.</param>
    /// <param name="cancellationToken">Stops opening; the store is then closed again.</param>
    /// <exception cref="MetadataStoreException">The file is from a newer Skiff, is not a SQLite database,
    /// or cannot be opened or put in WAL mode. A file from a newer Skiff or that is not a database is left
    /// exactly as it was.</exception>
    public static async Task<SqliteMetadataStore> OpenAsync(string path, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(time);
        var fullPath = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(fullPath)!);

        var store = new SqliteMetadataStore(fullPath, time);
        try
        {
            await store.MigrateAsync(cancellationToken).ConfigureAwait(false);
            return store;
        }
        catch (SqliteException e) when (e.SqliteErrorCode is SQLitePCL.raw.SQLITE_NOTADB or SQLitePCL.raw.SQLITE_CORRUPT)
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw MetadataStoreException.NotADatabase(fullPath, e);
        }
        catch (SqliteException e) when (e.SqliteErrorCode is SQLitePCL.raw.SQLITE_CANTOPEN or SQLitePCL.raw.SQLITE_PERM or SQLitePCL.raw.SQLITE_READONLY)
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw MetadataStoreException.CannotOpen(fullPath, e);
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Closes the store's pooled connections, which checkpoints the write-ahead log into the database
    /// file. Operations already under way finish on their own connections.
    /// </summary>
    public ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return ValueTask.CompletedTask;
        }

        _disposed = true;
        using var connection = new SqliteConnection(_connectionString);

        // Idle connections close now; ones in use close when they are returned instead of being pooled.
        SqliteConnection.ClearPool(connection);
        return ValueTask.CompletedTask;
    }

    /// <summary>Opens a pooled connection with the settings SQLite keeps per connection, not per file.</summary>
    private async Task<SqliteConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);

            // busy_timeout: SQLite waits this long for another process's lock instead of failing at once.
            // synchronous FULL: a commit is on disk before it returns, so a recorded deployment survives a
            // power cut too (NORMAL, in WAL mode, may lose the last commits).
            using var settings = Sql(connection, "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;");
            await settings.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private async Task<T> ReadAsync<T>(Func<SqliteConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await read(connection).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="write"/> in one transaction, committed when it returns, rolled back when it throws.</summary>
    private async Task<T> WriteAsync<T>(Func<SqliteTransaction, Task<T>> write, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

            // IMMEDIATE takes the write lock at BEGIN. A deferred transaction that reads and then writes
            // fails at once with SQLITE_BUSY_SNAPSHOT, which no busy timeout retries, when another
            // process committed in between.
            using var transaction = connection.BeginTransaction(deferred: false);
            var result = await write(transaction).ConfigureAwait(false);
            transaction.Commit();
            return result;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    private Task WriteAsync(Func<SqliteTransaction, Task> write, CancellationToken cancellationToken) =>
        WriteAsync(
            async transaction =>
            {
                await write(transaction).ConfigureAwait(false);
                return true;
            },
            cancellationToken);

    private static SqliteCommand Sql(SqliteConnection connection, string text, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = text;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    private static SqliteCommand Sql(SqliteTransaction transaction, string text, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var command = Sql(transaction.Connection!, text, parameters);
        command.Transaction = transaction;
        return command;
    }

    // The helpers below run a command from Sql(...) and dispose it.

    private static async Task<int> ExecuteAsync(SqliteCommand command, CancellationToken cancellationToken)
    {
        using (command)
        {
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<bool> ExistsAsync(SqliteCommand command, CancellationToken cancellationToken)
    {
        using (command)
        {
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
        }
    }

    private static async Task<IReadOnlyList<T>> ListAsync<T>(SqliteCommand command, Func<SqliteDataReader, T> map, CancellationToken cancellationToken)
    {
        using (command)
        {
            var items = new List<T>();
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                items.Add(map(reader));
            }

            return items;
        }
    }

    private static async Task<T?> SingleOrNullAsync<T>(SqliteCommand command, Func<SqliteDataReader, T> map, CancellationToken cancellationToken)
        where T : class
    {
        using (command)
        {
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? map(reader) : null;
        }
    }

    // ISO-8601 in UTC with seven fraction digits ("O"): text that sorts in time order, so ORDER BY works on it.
    private static string Time(DateTimeOffset value) => value.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);

    private static string? Time(DateTimeOffset? value) => value is { } time ? Time(time) : null;

    private string Now() => Time(_time.GetUtcNow());

    private static DateTimeOffset ReadTime(SqliteDataReader reader, int ordinal) =>
        DateTimeOffset.ParseExact(reader.GetString(ordinal), "O", CultureInfo.InvariantCulture, DateTimeStyles.None);

    private static DateTimeOffset? ReadNullableTime(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : ReadTime(reader, ordinal);

    private static Digest ReadDigest(SqliteDataReader reader, int ordinal) => Digest.Parse(reader.GetString(ordinal));

    private static Digest? ReadNullableDigest(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : ReadDigest(reader, ordinal);

    private static string? ReadNullableString(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static string TimingsJson(IReadOnlyDictionary<string, long> timingsMs) => JsonSerializer.Serialize(timingsMs);

    private static Dictionary<string, long> ReadTimings(SqliteDataReader reader, int ordinal) =>
        JsonSerializer.Deserialize<Dictionary<string, long>>(reader.GetString(ordinal)) ?? [];
}
