using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>The metadata contract for tokens and the audit log, run against each store by the classes below it.</summary>
public abstract class TokenContract : IAsyncLifetime
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

    private static TokenRecord Token(string name, string hash, params string[] locations) =>
        new(name, "deploy", locations, hash, Some.Time, "server");

    [Fact]
    public async Task A_token_is_found_by_its_hash_and_name_listed_by_name_and_forgotten_when_deleted()
    {
        await _store.CreateTokenAsync(Token("zeta", "hash-z"), CancellationToken.None);
        await _store.CreateTokenAsync(Token("ci", "hash-c", "analytics", "reports"), CancellationToken.None);

        var found = await _store.FindTokenAsync("hash-c", CancellationToken.None);
        found.ShouldNotBeNull();
        found.Name.ShouldBe("ci");
        found.Role.ShouldBe("deploy");
        found.Locations.ShouldBe(["analytics", "reports"]);
        found.CreatedAt.ShouldBe(Some.Time);
        found.CreatedBy.ShouldBe("server");
        (await _store.GetTokenAsync("zeta", CancellationToken.None))!.SecretHash.ShouldBe("hash-z");
        (await _store.ListTokensAsync(CancellationToken.None)).Select(t => t.Name).ShouldBe(["ci", "zeta"]);

        (await _store.DeleteTokenAsync("ci", CancellationToken.None)).ShouldBeTrue();
        (await _store.DeleteTokenAsync("ci", CancellationToken.None)).ShouldBeFalse();
        (await _store.FindTokenAsync("hash-c", CancellationToken.None)).ShouldBeNull();
        (await _store.ListTokensAsync(CancellationToken.None)).Select(t => t.Name).ShouldBe(["zeta"]);
    }

    [Fact]
    public async Task A_second_token_of_the_same_name_is_a_conflict_and_changes_nothing()
    {
        await _store.CreateTokenAsync(Token("ci", "hash-1"), CancellationToken.None);

        await Should.ThrowAsync<MetadataConflictException>(() => _store.CreateTokenAsync(Token("ci", "hash-2"), CancellationToken.None));

        (await _store.FindTokenAsync("hash-2", CancellationToken.None)).ShouldBeNull();
        (await _store.GetTokenAsync("ci", CancellationToken.None))!.SecretHash.ShouldBe("hash-1");
    }

    [Fact]
    public async Task A_token_deleted_through_one_store_is_gone_for_another_store_on_the_same_database_at_once()
    {
        await using var other = await _database.OpenStoreAsync();
        await _store.CreateTokenAsync(Token("ci", "hash-c"), CancellationToken.None);
        (await other.FindTokenAsync("hash-c", CancellationToken.None)).ShouldNotBeNull();

        await _store.DeleteTokenAsync("ci", CancellationToken.None);

        (await other.FindTokenAsync("hash-c", CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task The_audit_log_lists_newest_first_of_one_location_or_all_within_the_limit()
    {
        await _store.RecordAuditAsync(new AuditRecord(Some.Time, "ci", "deploy", "analytics", "sha256:aa", "d-1"), CancellationToken.None);
        await _store.RecordAuditAsync(new AuditRecord(Some.Time, "server", "gc", null, null, "3"), CancellationToken.None);
        await _store.RecordAuditAsync(new AuditRecord(Some.Time.AddSeconds(1), "ops", "run", "reports", "nightly", "r-1"), CancellationToken.None);
        await _store.RecordAuditAsync(new AuditRecord(Some.Time.AddSeconds(2), "ci", "rollback", "analytics", null, "d-2"), CancellationToken.None);

        var all = await _store.ListAuditAsync(null, 10, CancellationToken.None);
        var analytics = await _store.ListAuditAsync("analytics", 10, CancellationToken.None);
        var newest = await _store.ListAuditAsync(null, 2, CancellationToken.None);

        all.Select(e => e.Action).ShouldBe(["rollback", "run", "gc", "deploy"]);
        analytics.ShouldBe([
            new AuditRecord(Some.Time.AddSeconds(2), "ci", "rollback", "analytics", null, "d-2"),
            new AuditRecord(Some.Time, "ci", "deploy", "analytics", "sha256:aa", "d-1"),
        ]);
        newest.Select(e => e.Action).ShouldBe(["rollback", "run"]);
    }
}

public sealed class SqliteTokenTests : TokenContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresTokenTests(PostgresServer server) : TokenContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
