using Npgsql;
using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>
/// A new database on the shared <see cref="PostgresServer"/>, with a <see cref="TestClock"/> for the
/// stores opened on it and raw SQL access for looking behind the store's back. Left for the server's
/// removal at the end of the test run.
/// </summary>
internal sealed class PostgresTestDatabase : IContractDatabase
{
    private PostgresTestDatabase(PostgresServer server, string connectionString)
    {
        Server = server;
        ConnectionString = connectionString;
    }

    public PostgresServer Server { get; }

    public string ConnectionString { get; }

    public TestClock Clock { get; } = new();

    public static async Task<PostgresTestDatabase> CreateAsync(PostgresServer server) => new(server, await server.CreateDatabaseAsync());

    public Task<PostgresMetadataStore> OpenAsync() => PostgresMetadataStore.OpenAsync(ConnectionString, Clock, CancellationToken.None);

    async Task<IMetadataStore> IContractDatabase.OpenStoreAsync() => await OpenAsync();

    /// <summary>A connection of its own, not pooled, for holding locks or reading behind the store's back.</summary>
    public async Task<NpgsqlConnection> ConnectAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString + ";Pooling=false");
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Runs one statement on a connection of its own, closed before this returns.</summary>
    public async Task<object?> ScalarAsync(string sql)
    {
        await using var connection = await ConnectAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
