using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>The metadata contract for a location's environment variables, run against each store by the classes below it.</summary>
public abstract class VariableContract : IAsyncLifetime
{
    private IContractDatabase _database = null!;
    private IMetadataStore _store = null!;

    public async Task InitializeAsync()
    {
        _database = await CreateDatabaseAsync();
        _store = await _database.OpenStoreAsync();
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _database.DisposeAsync();
    }

    private protected abstract Task<IContractDatabase> CreateDatabaseAsync();

    private static LocationVariableRecord Variable(string location, string name, string value, bool secret = false, int second = 0, string by = "ana") =>
        new(location, name, value, secret, Some.Time.AddSeconds(second), by);

    [Fact]
    public async Task Variables_are_set_replaced_and_unset_per_location_in_name_order_and_outlive_the_store()
    {
        await _store.ChangeLocationVariablesAsync("app", [Variable("app", "DB_URL", "postgres://db"), Variable("app", "API_KEY", "sealed-1", secret: true)], [], CancellationToken.None);
        await _store.ChangeLocationVariablesAsync("other", [Variable("other", "DB_URL", "elsewhere")], [], CancellationToken.None);
        // One change replaces a value (and who set it, and when), adds one and removes one, with a name never set unset too.
        await _store.ChangeLocationVariablesAsync("app", [Variable("app", "API_KEY", "sealed-2", secret: true, second: 5, by: "bo"), Variable("app", "A_FIRST", "")], ["DB_URL", "NEVER_SET"], CancellationToken.None);

        await using var reopened = await _database.OpenStoreAsync();
        var app = await reopened.ListLocationVariablesAsync("app", CancellationToken.None);

        // Ordinal: 'P' sorts before '_'.
        app.ShouldBe([Variable("app", "API_KEY", "sealed-2", secret: true, second: 5, by: "bo"), Variable("app", "A_FIRST", "")]);
        (await reopened.ListLocationVariablesAsync("other", CancellationToken.None)).ShouldBe([Variable("other", "DB_URL", "elsewhere")]);
        (await reopened.ListLocationVariablesAsync("nowhere", CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_change_naming_another_location_is_refused_and_stores_nothing()
    {
        await Should.ThrowAsync<ArgumentException>(() =>
            _store.ChangeLocationVariablesAsync("app", [Variable("app", "OK", "1"), Variable("other", "STRAY", "2")], [], CancellationToken.None));

        (await _store.ListLocationVariablesAsync("app", CancellationToken.None)).ShouldBeEmpty();
        (await _store.ListLocationVariablesAsync("other", CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Values_are_kept_byte_for_byte()
    {
        const string value = "multi\nline \"quoted\" ünïcode = 😀 'x' \\ ;";
        await _store.ChangeLocationVariablesAsync("app", [Variable("app", "TEXT", value)], [], CancellationToken.None);

        (await _store.ListLocationVariablesAsync("app", CancellationToken.None)).ShouldHaveSingleItem().Value.ShouldBe(value);
    }
}

public sealed class SqliteVariableTests : VariableContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresVariableTests(PostgresServer server) : VariableContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
