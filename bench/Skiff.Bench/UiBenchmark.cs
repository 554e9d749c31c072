using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Microsoft.Data.Sqlite;
using Skiff.Core;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Bench;

/// <summary>
/// The web UI's reads against a platform with 1,000 locations and 100,000 runs in its metadata store (issue 14's
/// bound: overview and run list in ≤ 200 ms server time, p50). The store is seeded through the store's own
/// calls, then every call the Overview and Runs pages make is timed through HTTP on loopback: the time measured
/// is the server's plus one local round trip.
/// </summary>
internal static class UiBenchmark
{
    private const int Locations = 1_000;
    private const int RunsPerLocation = 100;
    private static readonly string[] Jobs = ["nightly", "hourly", "backfill", "report"];

    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var options = new ServerOptions { DataDirectory = Path.Combine(workspace.Root, "server"), Port = 0 };
        await using var server = await SkiffServerHost.StartAsync(options, TimeProvider.System, CancellationToken.None);
        var seeding = Stopwatch.StartNew();
        var release = await SeedDeploymentsAsync(server.Store);
        SeedRuns(options.DatabasePath, release);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"seeded {Locations:N0} locations, {Locations * RunsPerLocation:N0} runs in {seeding.Elapsed.TotalSeconds:0.0} s"));

        using var http = new HttpClient { BaseAddress = server.Url };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", server.Token);
        (string Name, string Path)[] calls =
        [
            ("overview page: GET /overview", "/api/v1/overview"),
            ("overview page: GET /locations", "/api/v1/locations"),
            ("runs page: GET /runs/search (first page)", "/api/v1/runs/search?limit=25"),
            ("runs page: page 40", "/api/v1/runs/search?limit=25&offset=1000"),
            ("runs page: one location", "/api/v1/runs/search?location=loc-0421&limit=25"),
            ("runs page: status failed", "/api/v1/runs/search?status=failed&limit=25"),
            ("runs page: job + status", "/api/v1/runs/search?job=backfill&status=canceled&limit=25"),
            ("runs page: location + job + status", "/api/v1/runs/search?location=loc-0777&job=nightly&status=succeeded&limit=25"),
        ];
        var series = new Dictionary<string, List<double>>();
        for (var i = 0; i < iterations + 2; i++)
        {
            foreach (var (name, path) in calls)
            {
                var started = Stopwatch.GetTimestamp();
                using var response = await http.GetAsync(path);
                var body = await response.Content.ReadAsByteArrayAsync();
                var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (!response.IsSuccessStatusCode || body.Length < 100)
                {
                    throw new InvalidOperationException($"{path} answered {(int)response.StatusCode}: {System.Text.Encoding.UTF8.GetString(body)}");
                }

                if (i >= 2)
                {
                    Stats.Add(series, name, elapsed); // the first two warm the JIT and the page cache
                }
            }
        }

        // Where the overview's time goes: its three store reads, called directly.
        var store = server.Store;
        (string Name, Func<Task<int>> Read)[] reads =
        [
            ("store: runs of the last 24 h by location, status", async () => (await store.CountRunsSinceAsync(DateTimeOffset.UtcNow.AddHours(-24), CancellationToken.None)).Count),
            ("store: newest deployment per location", async () => (await store.ListLatestDeploymentsAsync(CancellationToken.None)).Count),
            ("store: locations", async () => (await store.ListLocationsAsync(CancellationToken.None)).Count),
        ];
        for (var i = 0; i < iterations + 2; i++)
        {
            foreach (var (name, read) in reads)
            {
                var started = Stopwatch.GetTimestamp();
                if (await read() < Locations)
                {
                    throw new InvalidOperationException($"{name} read fewer rows than there are locations");
                }

                if (i >= 2)
                {
                    Stats.Add(series, name, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
            }
        }

        Stats.Print($"web UI reads, {Locations:N0} locations and {Locations * RunsPerLocation:N0} runs in SQLite, {iterations} reads each, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm}", series);
        return 0;
    }

    /// <summary>Each location gets three deployments, the last live, through the store's own calls.</summary>
    private static async Task<Digest> SeedDeploymentsAsync(IMetadataStore store)
    {
        var now = DateTimeOffset.UtcNow;
        var release = new ReleaseRecord(Digest.Compute("release"u8), Digest.Compute("environment"u8), Digest.Compute("source"u8), "Bench.dll", "1.0.0", now.AddDays(-3));
        await store.RegisterReleaseAsync(release, CancellationToken.None);
        const string definitions = """[{"name":"nightly","ops":[{"name":"nightly"}]},{"name":"hourly","ops":[{"name":"hourly"}]},{"name":"backfill","ops":[{"name":"backfill"}]},{"name":"report","ops":[{"name":"report"}]}]""";
        var timings = new Dictionary<string, long> { ["build"] = 410, ["pack"] = 30, ["upload"] = 20, ["activate"] = 220 };
        for (var l = 0; l < Locations; l++)
        {
            var location = string.Create(CultureInfo.InvariantCulture, $"loc-{l:0000}");
            for (var d = 0; d < 3; d++)
            {
                var id = $"{location}-d{d}";
                var at = now.AddHours(-47 + (d * 10)).AddSeconds(l);
                await store.CreateDeploymentAsync(new DeploymentRecord(id, location, release.Id, release.Environment, release.Source, d == 0 ? "full" : "fast", 3, 1200, timings, "bench", at, DeploymentOutcomes.Pending, null, null, null, null), CancellationToken.None);
                await store.CompleteDeploymentAsync(id, DeploymentOutcomes.Live, null, definitions, null, timings, CancellationToken.None);
            }
        }

        return release.Id;
    }

    /// <summary>
    /// 100 ended runs per location over the last 47 hours, interleaved by location, of every final status and job, in
    /// one transaction and in the store's own format: through the store, each run is its own synchronous commit and
    /// 100,000 take minutes.
    /// </summary>
    private static void SeedRuns(string databasePath, Digest release)
    {
        string[] statuses = [RunStatuses.Succeeded, RunStatuses.Succeeded, RunStatuses.Succeeded, RunStatuses.Failed, RunStatuses.Canceled];
        var now = DateTimeOffset.UtcNow;
        using var connection = new SqliteConnection($"Data Source={databasePath}");
        connection.Open();
        using var transaction = connection.BeginTransaction();
        using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText =
            "INSERT INTO runs (id, location, release, job, parameters_json, status, started_at, finished_at, reason, agent) " +
            "VALUES ($id, $location, $release, $job, '{}', $status, $startedAt, $finishedAt, $reason, 'bench');";
        var parameters = new[] { "$id", "$location", "$release", "$job", "$status", "$startedAt", "$finishedAt", "$reason" }
            .Select(name => insert.Parameters.Add(new SqliteParameter(name, null))).ToArray();
        for (var r = 0; r < RunsPerLocation; r++)
        {
            for (var l = 0; l < Locations; l++)
            {
                var started = now.AddSeconds(-((r * Locations) + l) * 1.7);
                var status = statuses[(r + l) % statuses.Length];
                object?[] values =
                [
                    string.Create(CultureInfo.InvariantCulture, $"loc-{l:0000}-r{r:000}"), string.Create(CultureInfo.InvariantCulture, $"loc-{l:0000}"), release.ToString(),
                    Jobs[(r + l) % Jobs.Length], status, Time(started), Time(started.AddSeconds(3)), status == RunStatuses.Failed ? "boom" : DBNull.Value,
                ];
                for (var p = 0; p < values.Length; p++)
                {
                    parameters[p].Value = values[p];
                }

                insert.ExecuteNonQuery();
            }
        }

        transaction.Commit();
    }

    private static string Time(DateTimeOffset value) => value.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);
}
