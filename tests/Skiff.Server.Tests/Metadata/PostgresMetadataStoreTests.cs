using System.Diagnostics;
using Npgsql;
using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>What only the PostgreSQL store has: migrations shared by servers, and a server that restarts under it.</summary>
[Collection(PostgresServer.Collection)]
public sealed class PostgresMetadataStoreTests(PostgresServer server) : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private PostgresTestDatabase _database = null!;

    public async Task InitializeAsync() => _database = await PostgresTestDatabase.CreateAsync(server);

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Open_Twice_AppliesEachMigrationOnce()
    {
        await (await _database.OpenAsync()).DisposeAsync();
        _database.Clock.Advance(TimeSpan.FromHours(1));
        await (await _database.OpenAsync()).DisposeAsync();

        var known = PostgresMetadataStore.KnownSchemaVersion;
        known.ShouldBeGreaterThan(0);
        (await _database.ScalarAsync("SELECT count(*) FROM schema_migrations;")).ShouldBe((long)known);
        (await _database.ScalarAsync("SELECT max(version) FROM schema_migrations;")).ShouldBe(known);

        // Stamped by the first open, not the second.
        (await _database.ScalarAsync("SELECT max(applied_at) FROM schema_migrations;")).ShouldBe(Some.Time.UtcDateTime);
    }

    [Fact]
    public async Task Open_BySeveralServersAtOnceOnANewDatabase_MigratesOnce()
    {
        var stores = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(_database.OpenAsync)));
        foreach (var store in stores)
        {
            await store.DisposeAsync();
        }

        (await _database.ScalarAsync("SELECT count(*) FROM schema_migrations;")).ShouldBe((long)PostgresMetadataStore.KnownSchemaVersion);
    }

    [Fact]
    public async Task Open_DatabaseThatANewerSkiffMigrated_IsRefusedWithWhatToDoAndLeftUnchanged()
    {
        await using (var store = await _database.OpenAsync())
        {
            await store.RegisterReleaseAsync(Some.Release(), CancellationToken.None);
        }

        await _database.ScalarAsync("INSERT INTO schema_migrations (version, applied_at) VALUES (9000, now());");

        var refused = await Should.ThrowAsync<MetadataStoreException>(_database.OpenAsync());

        refused.Message.ShouldContain("schema version 9000");
        refused.Message.ShouldContain($"up to {PostgresMetadataStore.KnownSchemaVersion}");
        refused.Message.ShouldContain("Run that newer Skiff");
        refused.DatabasePath.ShouldBe($"postgresql://postgres@127.0.0.1:{server.Port}/{new NpgsqlConnectionStringBuilder(_database.ConnectionString).Database}");
        refused.Message.ShouldContain(refused.DatabasePath);
        (await _database.ScalarAsync("SELECT count(*) FROM schema_migrations;")).ShouldBe(PostgresMetadataStore.KnownSchemaVersion + 1L);
        (await _database.ScalarAsync("SELECT count(*) FROM releases;")).ShouldBe(1L);
    }

    [Fact]
    public async Task Open_WhereNothingListens_IsOneClearLineWithoutThePassword()
    {
        var url = $"postgres://skiff:s3cret@127.0.0.1:{FreePort()}/skiff";

        var refused = await Should.ThrowAsync<MetadataStoreException>(PostgresMetadataStore.OpenAsync(url, _database.Clock, CancellationToken.None));

        refused.Message.ShouldStartWith($"the metadata database postgresql://skiff@127.0.0.1:");
        refused.Message.ShouldContain("cannot be reached");
        refused.Message.ShouldContain("Check that PostgreSQL is running");
        refused.Message.ShouldNotContain("s3cret");
        refused.Message.ShouldNotContain("\n");
    }

    [Fact]
    public async Task TwoStoresOnOneDatabase_SeeEachOthersWritesAtOnce()
    {
        await using var first = await _database.OpenAsync();
        await using var second = await _database.OpenAsync();
        var release = Some.Release();

        await first.RegisterReleaseAsync(release, CancellationToken.None);
        (await second.RegisterReleaseAsync(release, CancellationToken.None)).ShouldBeFalse();
        await second.CreateDeploymentAsync(Some.Deployment("d1", "analytics", release), CancellationToken.None);
        await first.CompleteDeploymentAsync("d1", DeploymentOutcomes.Live, null, "{}", null, new Dictionary<string, long>(), CancellationToken.None);
        await first.CreateRunAsync(Some.Run("r1", "analytics", release), CancellationToken.None);
        await second.AppendRunEventAsync("r1", 1, "{}", CancellationToken.None);

        (await second.GetLocationAsync("analytics", CancellationToken.None))!.LiveDeployment.ShouldBe("d1");
        (await second.ListRunningRunsAsync(CancellationToken.None)).ShouldBe([new RunningRun("r1", "agent-1", 1)]);
        (await first.GetRunEventsAsync("r1", 0, 10, CancellationToken.None)).Count.ShouldBe(1);
        await Should.ThrowAsync<MetadataConflictException>(
            second.CompleteDeploymentAsync("d1", DeploymentOutcomes.Failed, "late", null, null, new Dictionary<string, long>(), CancellationToken.None));
    }

    [Fact]
    public async Task Stored_TimesAreTimestamptzInUtc_ToTheMicrosecond()
    {
        var registeredAt = new DateTimeOffset(2025, 6, 1, 14, 30, 0, TimeSpan.FromHours(2)).AddTicks(1234560);
        var release = Some.Release(registeredAt: registeredAt);
        await using var store = await _database.OpenAsync();

        await store.RegisterReleaseAsync(release, CancellationToken.None);

        (await store.GetReleaseAsync(release.Id, CancellationToken.None))!.RegisteredAt.ShouldBe(registeredAt);
        (await _database.ScalarAsync("SELECT to_char(registered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM releases;")).ShouldBe("2025-06-01 12:30:00.123456");
    }

    [Fact]
    public async Task Restart_WhileTheStoreIsIdle_TheNextCallSucceeds()
    {
        await using var store = await _database.OpenAsync();
        var release = Some.Release();
        await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Task.Run(() => store.RegisterReleaseAsync(release, CancellationToken.None))));

        await server.RestartAsync();

        // Every pooled connection died with the server; the store drops them and reconnects.
        (await store.GetReleaseAsync(release.Id, CancellationToken.None)).ShouldBe(release);
        (await store.RegisterReleaseAsync(Some.Release("after"), CancellationToken.None)).ShouldBeTrue();
    }

    [Fact]
    public async Task Restart_DuringCompleteDeployment_LeavesItPendingOrLive_NeverHalfDone()
    {
        await using var store = await _database.OpenAsync();
        var release = Some.Release();
        await store.RegisterReleaseAsync(release, CancellationToken.None);
        await store.CreateDeploymentAsync(Some.Deployment("d1", "analytics", release), CancellationToken.None);

        // Hold the location's row, so the completion has updated the deployment and waits to update the
        // location, inside its transaction, when PostgreSQL goes down.
        var holder = await _database.ConnectAsync();
        await using (var hold = new NpgsqlCommand("BEGIN; SELECT 1 FROM locations WHERE name = 'analytics' FOR UPDATE;", holder))
        {
            await hold.ExecuteNonQueryAsync();
        }

        var completing = Task.Run(() => store.CompleteDeploymentAsync("d1", DeploymentOutcomes.Live, null, "{}", null, new Dictionary<string, long> { ["activate"] = 5 }, CancellationToken.None));
        await WaitUntilWaitingOnALockAsync();
        await server.RestartAsync();
        await holder.DisposeAsync();

        var failure = await Record.ExceptionAsync(() => completing);

        if (failure is not null)
        {
            failure.ShouldBeOfType<MetadataStoreException>().Message.ShouldContain("cannot be reached");
        }

        var deployment = await store.GetDeploymentAsync("d1", CancellationToken.None);
        var location = await store.GetLocationAsync("analytics", CancellationToken.None);
        deployment!.Outcome.ShouldBe(failure is null ? DeploymentOutcomes.Live : DeploymentOutcomes.Pending);
        location!.LiveDeployment.ShouldBe(failure is null ? "d1" : null);
        if (failure is not null)
        {
            deployment.FinishedAt.ShouldBeNull();
            await store.CompleteDeploymentAsync("d1", DeploymentOutcomes.Live, null, "{}", null, new Dictionary<string, long>(), CancellationToken.None);
            (await store.GetLocationAsync("analytics", CancellationToken.None))!.LiveDeployment.ShouldBe("d1");
        }
    }

    [Fact]
    public async Task Restart_DuringAnEventAppend_ResentEventsLandOnce_NoneLost()
    {
        await using var store = await _database.OpenAsync();
        var release = Some.Release();
        await Some.LiveDeploymentAsync(store, "d1", "analytics", release);
        await store.CreateRunAsync(Some.Run("r1", "analytics", release), CancellationToken.None);
        for (var seq = 1; seq <= 4; seq++)
        {
            await store.AppendRunEventAsync("r1", seq, $$"""{"n":{{seq}}}""", CancellationToken.None);
        }

        // Another transaction holds event 5 uncommitted, so the store's append of 5 waits on it.
        var holder = await _database.ConnectAsync();
        await using (var hold = new NpgsqlCommand("""BEGIN; INSERT INTO run_events (run_id, seq, json) VALUES ('r1', 5, '{"n":"never committed"}');""", holder))
        {
            await hold.ExecuteNonQueryAsync();
        }

        var appending = Task.Run(() => store.AppendRunEventAsync("r1", 5, """{"n":5}""", CancellationToken.None));
        await WaitUntilWaitingOnALockAsync();
        await server.RestartAsync();
        await holder.DisposeAsync();
        var failure = await Record.ExceptionAsync(() => appending);

        // The worker resends from what the store says it has, as an agent does after a reconnect.
        var last = (await store.ListRunningRunsAsync(CancellationToken.None)).Single().LastSeq;
        for (var seq = 1; seq <= 6; seq++)
        {
            await store.AppendRunEventAsync("r1", seq, $$"""{"n":{{seq}}}""", CancellationToken.None);
        }

        if (failure is not null)
        {
            failure.ShouldBeOfType<MetadataStoreException>();
        }

        last.ShouldBe(failure is null ? 5 : 4);
        (await store.GetRunEventsAsync("r1", 0, 100, CancellationToken.None)).ShouldBe(
            [.. Enumerable.Range(1, 6).Select(seq => new RunEventRecord(seq, $$"""{"n":{{seq}}}"""))]);
    }

    /// <summary>Waits until a session of the test's database is blocked on a lock another one holds.</summary>
    private async Task WaitUntilWaitingOnALockAsync()
    {
        var deadline = Stopwatch.StartNew();
        while ((long)(await _database.ScalarAsync("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock';"))! == 0)
        {
            deadline.Elapsed.ShouldBeLessThan(Deadline, "no session started waiting on the held lock");
            await Task.Delay(10);
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
