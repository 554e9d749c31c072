using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metadata;

/// <summary>The metadata contract for deployments, run against each store by the classes below it.</summary>
public abstract class DeploymentContract : IAsyncLifetime
{
    private static readonly Dictionary<string, long> FinalTimings = new() { ["build"] = 850, ["upload"] = 40, ["activate"] = 210 };

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

    [Fact]
    public async Task CreateDeployment_RoundTripsAndCreatesItsLocationWithNothingLive()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);
        var deployment = Some.Deployment("d1", "analytics", release) with { Who = "ci@example.com", BlobsUploaded = 3, BytesUploaded = 5_000_000_000 };

        await _store.CreateDeploymentAsync(deployment, CancellationToken.None);

        (await _store.GetDeploymentAsync("d1", CancellationToken.None)).ShouldMatch(deployment);
        (await _store.GetLocationAsync("analytics", CancellationToken.None)).ShouldBe(new LocationRecord("analytics", null, null, null, _database.Clock.GetUtcNow()));
        (await _store.GetDeploymentAsync("nope", CancellationToken.None)).ShouldBeNull();
        (await _store.GetLocationAsync("nope", CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task CreateDeployment_Rollback_RoundTripsEveryField()
    {
        var release = Some.Release();
        await Some.LiveDeploymentAsync(_store, "d1", "analytics", release);
        var rollback = Some.Deployment("d2", "analytics", release, Some.Time.AddMinutes(5), DeploymentOutcomes.Failed) with
        {
            Path = DeploymentPaths.Rollback,
            RollbackOf = "d1",
            BlobsUploaded = 0,
            BytesUploaded = 0,
            TimingsMs = new Dictionary<string, long>(),
            Error = "agent unreachable",
            DefinitionsJson = """{"jobs":[]}""",
            FinishedAt = Some.Time.AddMinutes(6),
        };

        await _store.CreateDeploymentAsync(rollback, CancellationToken.None);

        (await _store.GetDeploymentAsync("d2", CancellationToken.None)).ShouldMatch(rollback);
    }

    [Fact]
    public async Task CompleteDeployment_Live_MakesItTheLocationsLiveDeployment()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);
        var deployment = Some.Deployment("d1", "analytics", release);
        await _store.CreateDeploymentAsync(deployment, CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromSeconds(2));

        await _store.CompleteDeploymentAsync("d1", DeploymentOutcomes.Live, null, """{"jobs":["nightly_etl"]}""", null, FinalTimings, CancellationToken.None);

        var finishedAt = _database.Clock.GetUtcNow();
        (await _store.GetDeploymentAsync("d1", CancellationToken.None)).ShouldMatch(deployment with
        {
            Outcome = DeploymentOutcomes.Live,
            DefinitionsJson = """{"jobs":["nightly_etl"]}""",
            TimingsMs = FinalTimings,
            FinishedAt = finishedAt,
        });
        (await _store.GetLocationAsync("analytics", CancellationToken.None)).ShouldBe(
            new LocationRecord("analytics", "d1", release.Id, """{"jobs":["nightly_etl"]}""", finishedAt));
    }

    [Fact]
    public async Task Commit_AndDirtyFlag_AreKeptWithEachDeployment()
    {
        var release = Some.Release("first");
        await _store.RegisterReleaseAsync(release, CancellationToken.None);
        var commit = new string('a', 40);
        await _store.CreateDeploymentAsync(Some.Deployment("clean", "analytics", release) with { Commit = commit, Dirty = false }, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("dirty", "analytics", release) with { Commit = commit, Dirty = true }, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("none", "analytics", release), CancellationToken.None);

        var history = await _store.ListDeploymentsAsync("analytics", 10, CancellationToken.None);

        history.OrderBy(d => d.Id, StringComparer.Ordinal).Select(d => (d.Id, d.Commit, d.Dirty)).ShouldBe(
            [("clean", commit, false), ("dirty", commit, true), ("none", null, null)]);
    }

    [Fact]
    public async Task MemoryLimit_IsTheLiveDeployments_NotThatOfOneThatFailed()
    {
        var first = Some.Release("first");
        var second = Some.Release("second");
        await _store.RegisterReleaseAsync(first, CancellationToken.None);
        await _store.RegisterReleaseAsync(second, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d1", "analytics", first) with { MemoryLimit = "512MiB" }, CancellationToken.None);
        await _store.CompleteDeploymentAsync("d1", DeploymentOutcomes.Live, null, "[]", null, FinalTimings, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d2", "analytics", second) with { MemoryLimit = "1024MiB" }, CancellationToken.None);

        var whilePending = await _store.GetLocationAsync("analytics", CancellationToken.None);
        await _store.CompleteDeploymentAsync("d2", DeploymentOutcomes.Failed, "crashed", null, null, FinalTimings, CancellationToken.None);

        whilePending!.MemoryLimit.ShouldBe("512MiB");
        (await _store.GetLocationAsync("analytics", CancellationToken.None))!.MemoryLimit.ShouldBe("512MiB");
        (await _store.ListLocationsAsync(CancellationToken.None)).Single().MemoryLimit.ShouldBe("512MiB");
        (await _store.GetDeploymentAsync("d2", CancellationToken.None))!.MemoryLimit.ShouldBe("1024MiB");
    }

    [Fact]
    public async Task Variant_IsKeptWithTheDeployment_AndTheLocationShowsThatOfItsLiveOne()
    {
        var baseline = Some.Release("base");
        var ml = Some.Release("ml");
        await _store.RegisterReleaseAsync(baseline, CancellationToken.None);
        await _store.RegisterReleaseAsync(ml, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d1", "training", baseline) with { Outcome = DeploymentOutcomes.Live, DefinitionsJson = "[]", Variant = "base" }, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d2", "training", ml) with { Variant = "ml" }, CancellationToken.None);
        var whilePending = await _store.GetLocationAsync("training", CancellationToken.None);
        await _store.CompleteDeploymentAsync("d2", DeploymentOutcomes.Live, null, "[]", null, FinalTimings, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d3", "older", baseline) with { Outcome = DeploymentOutcomes.Live, DefinitionsJson = "[]" }, CancellationToken.None);

        whilePending!.Variant.ShouldBe("base");
        (await _store.GetLocationAsync("training", CancellationToken.None))!.Variant.ShouldBe("ml");
        (await _store.ListDeploymentsAsync("training", 10, CancellationToken.None)).Select(d => d.Variant).ShouldBe(["ml", "base"]);
        // A deployment recorded without one (before variants) reads back as none, not as a default.
        (await _store.ListLocationsAsync(CancellationToken.None)).Single(l => l.Name == "older").Variant.ShouldBeNull();
    }

    [Fact]
    public async Task Experimental_IsKeptWithTheDeployment_AndTheLocationRefusesThemOnlyWhenSetTo()
    {
        var plain = Some.Release("plain");
        var experimental = Some.Release("experimental");
        await _store.RegisterReleaseAsync(plain, CancellationToken.None);
        await _store.RegisterReleaseAsync(experimental, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d1", "trial", plain) with { Outcome = DeploymentOutcomes.Live, DefinitionsJson = "[]" }, CancellationToken.None);
        var beforeExperimental = await _store.GetLocationAsync("trial", CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d2", "trial", experimental) with { Outcome = DeploymentOutcomes.Live, DefinitionsJson = "[]", Experimental = "YamlDotNet@18.0.0" }, CancellationToken.None);
        await _store.SetLocationRefusesExperimentalAsync("trial", refuses: true, CancellationToken.None);
        var refusing = await _store.GetLocationAsync("trial", CancellationToken.None);
        await _store.SetLocationRefusesExperimentalAsync("trial", refuses: false, CancellationToken.None);

        beforeExperimental!.Experimental.ShouldBeNull();
        beforeExperimental.RefusesExperimental.ShouldBeFalse();
        refusing!.Experimental.ShouldBe("YamlDotNet@18.0.0");
        refusing.RefusesExperimental.ShouldBeTrue();
        (await _store.ListLocationsAsync(CancellationToken.None)).Single(l => l.Name == "trial").RefusesExperimental.ShouldBeFalse();
        (await _store.ListDeploymentsAsync("trial", 10, CancellationToken.None)).Select(d => d.Experimental).ShouldBe(["YamlDotNet@18.0.0", null]);
        await Should.ThrowAsync<MetadataNotFoundException>(() => _store.SetLocationRefusesExperimentalAsync("nowhere", refuses: true, CancellationToken.None));
    }

    [Fact]
    public async Task Runs_AreIsolatedAtFirst_AndKeptAcrossDeploysOnceSet()
    {
        var first = Some.Release("first");
        var second = Some.Release("second");
        await _store.RegisterReleaseAsync(first, CancellationToken.None);
        await _store.RegisterReleaseAsync(second, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d1", "hosted", first) with { Outcome = DeploymentOutcomes.Live, DefinitionsJson = "[]" }, CancellationToken.None);
        var atFirst = await _store.GetLocationAsync("hosted", CancellationToken.None);
        await _store.SetLocationRunsAsync("hosted", RunHostings.Shared, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d2", "hosted", second) with { Outcome = DeploymentOutcomes.Live, DefinitionsJson = "[]" }, CancellationToken.None);

        atFirst!.Runs.ShouldBe(RunHostings.Isolated);
        (await _store.GetLocationAsync("hosted", CancellationToken.None))!.Runs.ShouldBe(RunHostings.Shared);
        (await _store.ListLocationsAsync(CancellationToken.None)).Single(l => l.Name == "hosted").Runs.ShouldBe(RunHostings.Shared);
        await Should.ThrowAsync<ArgumentException>(() => _store.SetLocationRunsAsync("hosted", "pooled", CancellationToken.None));
        await Should.ThrowAsync<MetadataNotFoundException>(() => _store.SetLocationRunsAsync("nowhere", RunHostings.Shared, CancellationToken.None));
        (await _store.GetLocationAsync("hosted", CancellationToken.None))!.Runs.ShouldBe(RunHostings.Shared);
    }

    [Fact]
    public async Task MinReplicas_IsKeptWithTheDeployment_AndTheLocationHasThatOfItsLiveOne()
    {
        var release = Some.Release("pool");
        await _store.RegisterReleaseAsync(release, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d1", "pool", release) with { Outcome = DeploymentOutcomes.Live, DefinitionsJson = "[]", Replicas = 8, MinReplicas = 0 }, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d2", "fixed", release) with { Outcome = DeploymentOutcomes.Live, DefinitionsJson = "[]", Replicas = 3 }, CancellationToken.None);

        var pool = (await _store.GetLocationAsync("pool", CancellationToken.None))!;
        (pool.MinReplicas, pool.Replicas).ShouldBe((0, 8));
        (await _store.GetDeploymentAsync("d1", CancellationToken.None))!.MinReplicas.ShouldBe(0);
        // A fixed number (and a deployment recorded before ranges were) has none.
        (await _store.ListLocationsAsync(CancellationToken.None)).Single(l => l.Name == "fixed").MinReplicas.ShouldBeNull();
    }

    [Fact]
    public async Task Tasks_AreKeptWithTheDeployment_AndTheLocationHasThoseOfItsLiveOne()
    {
        const string Tasks = """[{"name":"reconstruct","retry":{"max_attempts":3}}]""";
        const string Later = """[{"name":"render","retry":{"max_attempts":1}}]""";
        var first = Some.Release("first");
        var second = Some.Release("second");
        await _store.RegisterReleaseAsync(first, CancellationToken.None);
        await _store.RegisterReleaseAsync(second, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d1", "meshing", first), CancellationToken.None);
        await _store.CompleteDeploymentAsync("d1", DeploymentOutcomes.Live, null, "[]", Tasks, FinalTimings, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d2", "meshing", second), CancellationToken.None);
        await _store.CompleteDeploymentAsync("d2", DeploymentOutcomes.Failed, "crashed", null, null, FinalTimings, CancellationToken.None);
        var whilePool = await _store.GetLocationAsync("meshing", CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d3", "meshing", second) with { Outcome = DeploymentOutcomes.Live, DefinitionsJson = "[]", TasksJson = Later }, CancellationToken.None);

        whilePool!.TasksJson.ShouldBe(Tasks);
        (await _store.GetDeploymentAsync("d1", CancellationToken.None))!.TasksJson.ShouldBe(Tasks);
        (await _store.GetLocationAsync("meshing", CancellationToken.None))!.TasksJson.ShouldBe(Later);
        (await _store.ListLocationsAsync(CancellationToken.None)).Single().TasksJson.ShouldBe(Later);
        (await _store.ListDeploymentsAsync("meshing", 10, CancellationToken.None)).Select(d => d.TasksJson).ShouldBe([Later, null, Tasks]);
    }

    [Fact]
    public async Task CompleteDeployment_Failed_LeavesThePreviousDeploymentLive()
    {
        var first = Some.Release("first");
        var second = Some.Release("second");
        await Some.LiveDeploymentAsync(_store, "d1", "analytics", first);
        var liveBefore = await _store.GetLocationAsync("analytics", CancellationToken.None);
        await _store.RegisterReleaseAsync(second, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d2", "analytics", second, Some.Time.AddMinutes(1)), CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromMinutes(2));

        await _store.CompleteDeploymentAsync("d2", DeploymentOutcomes.Failed, "code server exited with 134 before reporting its jobs", null, null, FinalTimings, CancellationToken.None);

        var failed = await _store.GetDeploymentAsync("d2", CancellationToken.None);
        failed!.Outcome.ShouldBe(DeploymentOutcomes.Failed);
        failed.Error.ShouldBe("code server exited with 134 before reporting its jobs");
        failed.FinishedAt.ShouldBe(_database.Clock.GetUtcNow());
        (await _store.GetLocationAsync("analytics", CancellationToken.None)).ShouldBe(liveBefore);
        liveBefore!.LiveDeployment.ShouldBe("d1");
        liveBefore.LiveRelease.ShouldBe(first.Id);
    }

    [Fact]
    public async Task CompleteDeployment_Twice_IsRefusedAndChangesNothing()
    {
        await Some.LiveDeploymentAsync(_store, "d1", "analytics", Some.Release());
        var deployment = await _store.GetDeploymentAsync("d1", CancellationToken.None);
        var location = await _store.GetLocationAsync("analytics", CancellationToken.None);
        _database.Clock.Advance(TimeSpan.FromMinutes(1));

        var refused = await Should.ThrowAsync<MetadataConflictException>(
            _store.CompleteDeploymentAsync("d1", DeploymentOutcomes.Failed, "late failure", null, null, FinalTimings, CancellationToken.None));

        refused.Message.ShouldContain("'d1' is already live");
        (await _store.GetDeploymentAsync("d1", CancellationToken.None)).ShouldMatch(deployment!);
        (await _store.GetLocationAsync("analytics", CancellationToken.None)).ShouldBe(location);
    }

    [Fact]
    public async Task CompleteDeployment_Unknown_IsNotFound()
    {
        var missing = await Should.ThrowAsync<MetadataNotFoundException>(
            _store.CompleteDeploymentAsync("nope", DeploymentOutcomes.Live, null, null, null, FinalTimings, CancellationToken.None));

        missing.Kind.ShouldBe("deployment");
        missing.Id.ShouldBe("nope");
    }

    [Fact]
    public async Task CompleteDeployment_AsPending_IsAnArgumentError() =>
        await Should.ThrowAsync<ArgumentException>(
            () => _store.CompleteDeploymentAsync("d1", DeploymentOutcomes.Pending, null, null, null, FinalTimings, CancellationToken.None));

    [Fact]
    public async Task CreateDeployment_OfAnUnregisteredRelease_IsRefusedAndCreatesNoLocation()
    {
        var release = Some.Release();

        var missing = await Should.ThrowAsync<MetadataNotFoundException>(
            _store.CreateDeploymentAsync(Some.Deployment("d1", "analytics", release), CancellationToken.None));

        missing.Kind.ShouldBe("release");
        missing.Message.ShouldContain(release.Id.ToString());
        (await _store.ListLocationsAsync(CancellationToken.None)).ShouldBeEmpty();
        (await _store.GetDeploymentAsync("d1", CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task CreateDeployment_RollingBackAnUnknownDeployment_IsRefused()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);

        var missing = await Should.ThrowAsync<MetadataNotFoundException>(_store.CreateDeploymentAsync(
            Some.Deployment("d1", "analytics", release) with { Path = DeploymentPaths.Rollback, RollbackOf = "d0" },
            CancellationToken.None));

        missing.Id.ShouldBe("d0");
    }

    [Fact]
    public async Task CreateDeployment_WithAnIdAlreadyUsed_IsRefused()
    {
        var release = Some.Release();
        await Some.LiveDeploymentAsync(_store, "d1", "analytics", release);

        await Should.ThrowAsync<MetadataConflictException>(
            _store.CreateDeploymentAsync(Some.Deployment("d1", "reports", release), CancellationToken.None));

        (await _store.GetLocationAsync("reports", CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task CreateDeployment_WithUnknownPath_IsAnArgumentError()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);

        await Should.ThrowAsync<ArgumentException>(
            () => _store.CreateDeploymentAsync(Some.Deployment("d1", "analytics", release) with { Path = "sideways" }, CancellationToken.None));
    }

    [Fact]
    public async Task CreateDeployment_RecordedLive_IsTheLocationsLiveDeploymentAtOnce()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);

        await _store.CreateDeploymentAsync(
            Some.Deployment("d1", "analytics", release, outcome: DeploymentOutcomes.Live) with { Path = DeploymentPaths.Unchanged, DefinitionsJson = "{}", FinishedAt = Some.Time },
            CancellationToken.None);

        var location = await _store.GetLocationAsync("analytics", CancellationToken.None);
        location!.LiveDeployment.ShouldBe("d1");
        location.LiveRelease.ShouldBe(release.Id);
        location.DefinitionsJson.ShouldBe("{}");
    }

    [Fact]
    public async Task ListDeployments_IsNewestFirst_BreaksTiesByInsertionOrder_AndHonoursTheLimit()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);
        // The tied pair is inserted against its id order, so only insertion order can put d3 first.
        string[] ids = ["d1", "d2", "d4", "d3", "d5"];
        DateTimeOffset[] createdAt = [Some.Time, Some.Time.AddSeconds(1), Some.Time.AddSeconds(2), Some.Time.AddSeconds(2), Some.Time.AddSeconds(3)];
        for (var i = 0; i < ids.Length; i++)
        {
            await _store.CreateDeploymentAsync(Some.Deployment(ids[i], "analytics", release, createdAt[i]), CancellationToken.None);
        }

        await _store.CreateDeploymentAsync(Some.Deployment("other", "reports", release, Some.Time.AddHours(1)), CancellationToken.None);

        (await _store.ListDeploymentsAsync("analytics", 10, CancellationToken.None)).Select(d => d.Id).ShouldBe(["d5", "d3", "d4", "d2", "d1"]);
        (await _store.ListDeploymentsAsync("analytics", 3, CancellationToken.None)).Select(d => d.Id).ShouldBe(["d5", "d3", "d4"]);
        (await _store.ListDeploymentsAsync("nowhere", 3, CancellationToken.None)).ShouldBeEmpty();
        await Should.ThrowAsync<ArgumentOutOfRangeException>(() => _store.ListDeploymentsAsync("analytics", 0, CancellationToken.None));
        // Every location's newest in one read, by the same order.
        (await _store.ListLatestDeploymentsAsync(CancellationToken.None)).Select(d => d.Id).Order(StringComparer.Ordinal).ShouldBe(["d5", "other"]);
    }

    [Fact]
    public async Task FailPendingDeployments_AfterARestart_FailsThemWithTheReasonAndLeavesLocationsAsTheyWere()
    {
        var first = Some.Release("first");
        var second = Some.Release("second");
        await Some.LiveDeploymentAsync(_store, "d1", "analytics", first);
        await _store.RegisterReleaseAsync(second, CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d2", "analytics", second, Some.Time.AddMinutes(1)), CancellationToken.None);
        await _store.CreateDeploymentAsync(Some.Deployment("d3", "reports", second, Some.Time.AddMinutes(1)), CancellationToken.None);
        var locationsBefore = await _store.ListLocationsAsync(CancellationToken.None);

        // The server crashes mid-deploy and starts again.
        await _store.DisposeAsync();
        _database.Clock.Advance(TimeSpan.FromMinutes(5));
        _store = await _database.OpenStoreAsync();
        var failed = await _store.FailPendingDeploymentsAsync("the server restarted before the deployment finished", CancellationToken.None);

        failed.ShouldBe(2);
        foreach (var id in new[] { "d2", "d3" })
        {
            var deployment = await _store.GetDeploymentAsync(id, CancellationToken.None);
            deployment!.Outcome.ShouldBe(DeploymentOutcomes.Failed);
            deployment.Error.ShouldBe("the server restarted before the deployment finished");
            deployment.FinishedAt.ShouldBe(_database.Clock.GetUtcNow());
        }

        (await _store.GetDeploymentAsync("d1", CancellationToken.None))!.Outcome.ShouldBe(DeploymentOutcomes.Live);
        (await _store.ListLocationsAsync(CancellationToken.None)).ShouldBe(locationsBefore);
        (await _store.FailPendingDeploymentsAsync("again", CancellationToken.None)).ShouldBe(0);
    }

    [Fact]
    public async Task ListLocations_IsOrderedByName()
    {
        var release = Some.Release();
        await _store.RegisterReleaseAsync(release, CancellationToken.None);
        foreach (var name in new[] { "reports", "analytics", "Zeta", "billing" })
        {
            await _store.CreateDeploymentAsync(Some.Deployment($"d-{name}", name, release), CancellationToken.None);
        }

        (await _store.ListLocationsAsync(CancellationToken.None)).Select(l => l.Name).ShouldBe(["Zeta", "analytics", "billing", "reports"]);
    }
}

public sealed class SqliteDeploymentTests : DeploymentContract
{
    private protected override Task<IContractDatabase> CreateDatabaseAsync() => Task.FromResult<IContractDatabase>(new TestDatabase());
}

[Collection(PostgresServer.Collection)]
public sealed class PostgresDeploymentTests(PostgresServer server) : DeploymentContract
{
    private protected override async Task<IContractDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
