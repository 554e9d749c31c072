using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Core.Archives;
using Skiff.Core.Manifests;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metrics;

/// <summary>
/// GET /metrics of a real server that deploys and runs through an agent at the protocol's boundary: what happened moves
/// the figures it should, and only a platform-wide token of role read or higher may read them.
/// </summary>
public sealed class MetricsEndpointTests(MetricsEndpointTests.Fixture fixture) : IClassFixture<MetricsEndpointTests.Fixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    /// <summary>A server, an agent connected to it, releases in two environments in its blob store, and tokens.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        private readonly Workspace _workspace = new();

        internal RunningServer Server { get; private set; } = null!;

        internal ScriptedAgent Agent { get; private set; } = null!;

        /// <summary>Two releases that share their environment: the first deployed takes the full path, the other the fast one.</summary>
        internal IReadOnlyList<Digest> Releases { get; private set; } = [];

        /// <summary>A release in an environment of its own, for the tests that only need something live.</summary>
        internal Digest Other { get; private set; }

        internal Dictionary<string, string> Secrets { get; } = new(StringComparer.Ordinal);

        public async Task InitializeAsync()
        {
            Server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0 }, TimeProvider.System, CancellationToken.None);
            // Every blob goes in before any scrape, so the store's size a test reads is the one measured first.
            Releases = [await ReleaseAsync(Server, _workspace, "one", "1.0.0"), await ReleaseAsync(Server, _workspace, "two", "1.0.0")];
            Other = await ReleaseAsync(Server, _workspace, "other", "2.0.0");
            Agent = await ScriptedAgent.ConnectAsync(Server.Url, Server.Token, "agent-7", new HostCapacity(4, 8L << 30, 100L << 30), new AgentLoad(0, 0, 0, [], 2L << 30, 0.5, 60L << 30));
            await ScrapeUntilAsync(Server, m => m.Value("skiff_agent_cpus", "agent=agent-7") is not null);
            using var admin = Http(Server, Server.Token);
            foreach (var (name, role, locations) in new[] { ("prometheus", "read", Array.Empty<string>()), ("analytics-reader", "read", ["analytics"]) })
            {
                using var response = await admin.PostAsJsonAsync("api/v1/tokens", new { name, role, locations });
                response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
                Secrets[name] = (string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["secret"]!;
            }
        }

        public async Task DisposeAsync()
        {
            await Agent.DisposeAsync();
            await Server.DisposeAsync();
            _workspace.Dispose();
        }
    }

    [Fact]
    public async Task A_deploy_counts_by_location_path_and_outcome_with_its_stages_and_its_activation()
    {
        var before = await ScrapeAsync(fixture.Server, fixture.Server.Token);

        await DeployAsync(fixture.Server, "billing", fixture.Releases[0]);
        await DeployAsync(fixture.Server, "billing", fixture.Releases[1]);

        var after = await ScrapeAsync(fixture.Server, fixture.Server.Token);
        after.Value("skiff_deploys_total", "location=billing", "path=full", "outcome=live").ShouldBe(1);
        after.Value("skiff_deploys_total", "location=billing", "path=fast", "outcome=live").ShouldBe(1);
        after.Value("skiff_deploys_total", "location=billing", "outcome=failed").ShouldBeNull();
        // The client's stages as it reported them, and the server's own.
        Delta(before, after, "skiff_deploy_stage_duration_seconds_count", "path=full", "stage=upload").ShouldBe(1);
        Delta(before, after, "skiff_deploy_stage_duration_seconds_sum", "path=full", "stage=upload").ShouldBe(0.04, tolerance: 1e-9);
        Delta(before, after, "skiff_deploy_stage_duration_seconds_count", "path=fast", "stage=activate").ShouldBe(1);
        Delta(before, after, "skiff_deploy_stage_duration_seconds_count", "path=fast", "stage=total").ShouldBe(1);
        Delta(before, after, "skiff_deploy_stage_duration_seconds_bucket", "path=fast", "stage=total", "le=+Inf").ShouldBe(1);
        Delta(before, after, "skiff_activations_total", "outcome=succeeded").ShouldBe(2);
        Delta(before, after, "skiff_activation_duration_seconds_count").ShouldBe(2);
        // By route template, never the raw path.
        Delta(before, after, "skiff_http_requests_total", "method=POST", "code=200", "endpoint=/api/v1/deployments").ShouldBe(2, string.Join('\n', after.Text.Split('\n').Where(l => l.StartsWith("skiff_http_requests_total", StringComparison.Ordinal))));
        after.Value("skiff_http_request_duration_seconds_count", "method=POST", "code=200", "endpoint=/api/v1/deployments").ShouldNotBeNull();
    }

    [Fact]
    public async Task A_run_counts_as_started_and_finished_by_status_with_its_duration_queue_wait_and_stored_events()
    {
        await DeployAsync(fixture.Server, "reports", fixture.Other);
        var before = await ScrapeAsync(fixture.Server, fixture.Server.Token);

        using var admin = Http(fixture.Server, fixture.Server.Token);
        using var started = await admin.PostAsJsonAsync("api/v1/runs", new { location = "reports", job = "nightly" });
        started.StatusCode.ShouldBe(HttpStatusCode.Created, await started.Content.ReadAsStringAsync());

        // The agent's events are stored after the answer, by the server's event writer, which counts its queue down
        // after the batch that holds the run's end has committed: both are waited for (a gauge that never returns to 0
        // fails the wait).
        var after = await ScrapeUntilAsync(fixture.Server, m => Delta(before, m, "skiff_runs_finished_total", "status=succeeded") == 1 && m.Value("skiff_run_events_queued") == 0);
        Delta(before, after, "skiff_runs_started_total").ShouldBe(1);
        Delta(before, after, "skiff_runs_finished_total", "status=failed").ShouldBe(0);
        Delta(before, after, "skiff_run_duration_seconds_count", "status=succeeded").ShouldBe(1);
        Delta(before, after, "skiff_run_duration_seconds_sum", "status=succeeded").ShouldBe(ScriptedAgent.RunDuration.TotalSeconds, tolerance: 1e-9);
        Delta(before, after, "skiff_run_duration_seconds_bucket", "status=succeeded", "le=1").ShouldBe(0);
        Delta(before, after, "skiff_run_duration_seconds_bucket", "status=succeeded", "le=5").ShouldBe(1);
        Delta(before, after, "skiff_run_queue_wait_seconds_count").ShouldBe(1);
        Delta(before, after, "skiff_run_events_stored_total").ShouldBe(3);
        Delta(before, after, "skiff_run_event_batch_size_sum").ShouldBe(3);
        Delta(before, after, "skiff_run_event_batch_size_count").ShouldBeInRange(1, 3);
    }

    [Fact]
    public async Task Agents_connected_show_their_capacity_and_load_and_the_blob_store_its_size()
    {
        var metrics = await ScrapeAsync(fixture.Server, fixture.Server.Token);

        metrics.Value("skiff_agents_connected").ShouldBe(1);
        metrics.Value("skiff_agent_cpus", "agent=agent-7").ShouldBe(4);
        metrics.Value("skiff_agent_memory_bytes", "agent=agent-7").ShouldBe(8L << 30);
        metrics.Value("skiff_agent_memory_used_bytes", "agent=agent-7").ShouldBe(2L << 30);
        metrics.Value("skiff_agent_disk_free_bytes", "agent=agent-7").ShouldBe(60L << 30);
        metrics.Value("skiff_agent_load1", "agent=agent-7").ShouldBe(0.5);

        var blobs = new List<long>();
        await foreach (var blob in fixture.Server.Blobs.ListAsync(CancellationToken.None))
        {
            blobs.Add((await fixture.Server.Blobs.GetLengthAsync(blob, CancellationToken.None))!.Value);
        }

        blobs.Count.ShouldBe(10); // per release: its manifest and source; per environment: its manifest and its package
        metrics.Value("skiff_blob_store_blobs").ShouldBe(blobs.Count);
        metrics.Value("skiff_blob_store_bytes").ShouldBe(blobs.Sum());
    }

    [Fact]
    public async Task A_read_token_for_every_location_reads_them_and_no_token_or_a_location_scoped_one_is_refused()
    {
        var read = await ScrapeAsync(fixture.Server, fixture.Secrets["prometheus"]);
        read.Names.ShouldContain("skiff_agents_connected");
        // The process's own figures, as prometheus-net names them.
        read.Names.ShouldContain("process_cpu_seconds_total");

        using var anonymous = Http(fixture.Server, null);
        using var refused = await anonymous.GetAsync("metrics");
        refused.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        refused.Headers.WwwAuthenticate.ToString().ShouldBe("Bearer");

        using var scoped = Http(fixture.Server, fixture.Secrets["analytics-reader"]);
        using var forbidden = await scoped.GetAsync("metrics");
        forbidden.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        ((string)JsonNode.Parse(await forbidden.Content.ReadAsStringAsync())!["error"]!).ShouldBe(
            "this call covers the whole platform and needs a token for every location; token 'analytics-reader' (read, for analytics) is limited to analytics. " +
            "Ask an admin for a token made without --location (`skiff tokens create NAME --role read`).");
    }

    [Fact]
    public async Task Each_server_in_a_process_shows_only_its_own_figures()
    {
        await DeployAsync(fixture.Server, "analytics", fixture.Other);
        using var workspace = new Workspace();
        await using var other = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = workspace.PathTo("other"), Port = 0, ScrubBytesPerSecond = 0 }, TimeProvider.System, CancellationToken.None);

        var metrics = await ScrapeAsync(other, other.Token);

        metrics.Value("skiff_deploys_total").ShouldBeNull();
        metrics.Value("skiff_agents_connected").ShouldBe(0);
        metrics.Value("skiff_agent_cpus").ShouldBeNull();
        metrics.Value("skiff_blob_store_blobs").ShouldBe(0);
        (await ScrapeAsync(fixture.Server, fixture.Server.Token)).Value("skiff_deploys_total", "location=analytics").ShouldBe(1);
    }

    private static double Delta(MetricsText before, MetricsText after, string name, params string[] labels) =>
        (after.Value(name, labels) ?? 0) - (before.Value(name, labels) ?? 0);

    internal static async Task<MetricsText> ScrapeAsync(RunningServer server, string token)
    {
        using var http = Http(server, token);
        using var response = await http.GetAsync("metrics");
        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.OK, text);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("text/plain");
        response.Content.Headers.ContentType.Parameters.ShouldContain(p => p.Name == "version" && p.Value == "0.0.4");
        return new MetricsText(text);
    }

    private static async Task<MetricsText> ScrapeUntilAsync(RunningServer server, Func<MetricsText, bool> condition)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (true)
        {
            var metrics = await ScrapeAsync(server, server.Token);
            if (condition(metrics))
            {
                return metrics;
            }

            await Task.Delay(20, deadline.Token);
        }
    }

    /// <summary>Deploys through the API, as the CLI does after its upload, and checks that it went live.</summary>
    /// <summary>Deploys <paramref name="release"/> and checks it went live; a pool that scales with <paramref name="replicas"/> (MIN..MAX), on agents labelled <paramref name="on"/>.</summary>
    internal static async Task DeployAsync(RunningServer server, string location, Digest release, (int Min, int Max)? replicas = null, string? on = null)
    {
        using var http = Http(server, server.Token);
        var request = new JsonObject { ["location"] = location, ["release"] = release.ToString(), ["timings_ms"] = new JsonObject { ["build"] = 850, ["upload"] = 40 } };
        if (replicas is var (min, max))
        {
            (request["min_replicas"], request["replicas"]) = (min, max);
        }

        if (on is not null)
        {
            request["on"] = on;
        }

        using var response = await http.PostAsJsonAsync("api/v1/deployments", request);
        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.OK, body);
        ((string?)JsonNode.Parse(body)!["outcome"]).ShouldBe("live", body);
    }

    /// <summary>A release whose source holds App.dll, in an environment of one package: the same for the same version.</summary>
    internal static async Task<Digest> ReleaseAsync(RunningServer server, Workspace workspace, string name, string libraryVersion)
    {
        var package = await ArchiveAsync(server, workspace, ("lib/net10.0/Lib.dll", $"library {libraryVersion}"));
        var source = await ArchiveAsync(server, workspace, ("App.dll", $"app {name}"), ("App.deps.json", "{}"), ("App.runtimeconfig.json", "{}"));
        var environment = EnvironmentManifest.Create("net10.0", "linux-x64", ["Microsoft.NETCore.App"], "default", [new PackageEntry("Lib", libraryVersion, "sha512-x", package)]);
        var environmentDigest = await server.Blobs.PutAsync(new MemoryStream(environment.ToBytes()), CancellationToken.None);
        return await server.Blobs.PutAsync(new MemoryStream(ReleaseManifest.Create(environmentDigest, source, "App.dll", sdkVersion: null).ToBytes()), CancellationToken.None);
    }

    private static async Task<Digest> ArchiveAsync(RunningServer server, Workspace workspace, params (string Path, string Content)[] files)
    {
        var folder = workspace.PathTo("files", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var entries = new List<ArchiveFile>();
        foreach (var (path, content) in files)
        {
            var file = Path.Combine(folder, path.Replace('/', '_'));
            await File.WriteAllTextAsync(file, content);
            entries.Add(new ArchiveFile(path, file));
        }

        using var archive = new MemoryStream();
        await ArchiveWriter.WriteAsync(archive, entries, CancellationToken.None);
        archive.Position = 0;
        return await server.Blobs.PutAsync(archive, CancellationToken.None);
    }

    internal static HttpClient Http(RunningServer server, string? token)
    {
        var http = new HttpClient { BaseAddress = server.Url };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return http;
    }
}
