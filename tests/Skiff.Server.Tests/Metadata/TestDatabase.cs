using Microsoft.Data.Sqlite;
using Skiff.Server.Metadata;

namespace Skiff.Server.Tests.Metadata;

/// <summary>
/// A SQLite metadata database file in a new temp folder, deleted on dispose, with a <see cref="TestClock"/> for
/// the stores opened on it and raw SQL access for looking behind the store's back.
/// </summary>
internal sealed class TestDatabase : IContractDatabase, IDisposable
{
    public TestDatabase() => Folder = Directory.CreateTempSubdirectory("skiff-tests-").FullName;

    public string Folder { get; }

    public string Path => System.IO.Path.Combine(Folder, "metadata", "skiff.db");

    public TestClock Clock { get; } = new();

    public Task<SqliteMetadataStore> OpenAsync() => SqliteMetadataStore.OpenAsync(Path, Clock, CancellationToken.None);

    async Task<IMetadataStore> IContractDatabase.OpenStoreAsync() => await OpenAsync();

    /// <summary>Runs one statement on a connection of its own, not pooled, closed before this returns.</summary>
    public async Task<object?> ScalarAsync(string sql)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Pooling = false }.ToString());
        await connection.OpenAsync();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    public void Dispose()
    {
        if (Directory.Exists(Folder))
        {
            Directory.Delete(Folder, recursive: true);
        }
    }
}
