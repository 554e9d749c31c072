using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Skiff.Core.Messaging;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Server.Tests.Metrics;

/// <summary>
/// A real Prometheus (Debian's, installed by scripts/prometheus.sh) scrapes a real server with a read token from a
/// credentials file, as docs/metrics.md tells operators to, and a deploy is read back through its query API.
/// </summary>
public sealed class PrometheusScrapeTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly Workspace _workspace = new();
    private RunningServer _server = null!;
    private ScriptedAgent _agent = null!;
    private RunningProcess? _prometheus;

    public async Task InitializeAsync()
    {
        _server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0, ScrubBytesPerSecond = 0 }, TimeProvider.System, CancellationToken.None);
        _agent = await ScriptedAgent.ConnectAsync(_server.Url, _server.Token, "agent-1", new HostCapacity(2), new AgentLoad(0, 0, 0, []));
    }

    public async Task DisposeAsync()
    {
        // Killed by its process id: the only Prometheus this test touches is the one it started.
        if (_prometheus is not null)
        {
            await _prometheus.DisposeAsync();
        }

        await _agent.DisposeAsync();
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task Prometheus_scrapes_the_server_with_a_read_token_and_its_query_api_reads_the_deploy_count_back()
    {
        var prometheus = await InstallAsync();
        using var admin = MetricsEndpointTests.Http(_server, _server.Token);
        using var created = await admin.PostAsJsonAsync("api/v1/tokens", new { name = "prometheus", role = "read" });
        created.StatusCode.ShouldBe(HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        var credentials = _workspace.PathTo("prometheus-token");
        await File.WriteAllTextAsync(credentials, (string)JsonNode.Parse(await created.Content.ReadAsStringAsync())!["secret"]!);
        File.SetUnixFileMode(credentials, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var port = ServerPorts.Free();
        var config = _workspace.PathTo("prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: skiff
                metrics_path: /metrics
                authorization:
                  type: Bearer
                  credentials_file: {credentials}
                static_configs:
                  - targets: ["{_server.Url.Authority}"]
            """);
        // On 127.0.0.1 only: Prometheus listens on every interface unless told.
        _prometheus = RunningProcess.Start(
            prometheus,
            [$"--config.file={config}", $"--storage.tsdb.path={_workspace.PathTo("prometheus-data")}", $"--web.listen-address=127.0.0.1:{port}"],
            _workspace.Root);
        await _prometheus.WaitForLineAsync(line => line.Contains("Server is ready to receive web requests", StringComparison.Ordinal), Deadline);

        var release = await MetricsEndpointTests.ReleaseAsync(_server, _workspace, "scraped", "1.0.0");
        await MetricsEndpointTests.DeployAsync(_server, "billing", release);
        await MetricsEndpointTests.DeployAsync(_server, "billing", release);

        using var query = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        using var deadline = new CancellationTokenSource(Deadline);
        JsonNode? answer = null;
        while (!deadline.IsCancellationRequested)
        {
            answer = JsonNode.Parse(await query.GetStringAsync("api/v1/query?query=" + Uri.EscapeDataString("sum by (location) (skiff_deploys_total)"), deadline.Token));
            if (answer?["data"]?["result"] is JsonArray { Count: 1 } results && (string?)results[0]!["value"]![1] == "2")
            {
                break;
            }

            await Task.Delay(100, deadline.Token);
        }

        answer.ShouldNotBeNull();
        ((string?)answer["status"]).ShouldBe("success", answer.ToJsonString());
        var result = answer["data"]!["result"]!.AsArray().ShouldHaveSingleItem()!;
        ((string?)result["metric"]!["location"]).ShouldBe("billing");
        double.Parse((string)result["value"]![1]!, CultureInfo.InvariantCulture).ShouldBe(2);

        // The target is up: each scrape was let in with the token's read role.
        var targets = JsonNode.Parse(await query.GetStringAsync("api/v1/targets"))!["data"]!["activeTargets"]!.AsArray();
        var target = targets.ShouldHaveSingleItem()!;
        ((string?)target["health"]).ShouldBe("up", target.ToJsonString());
    }

    private static async Task<string> InstallAsync()
    {
        var install = await CliProcess.RunAsync("bash", [Path.Combine(Workspace.RepositoryRoot, "scripts", "prometheus.sh"), "install"], Workspace.RepositoryRoot);
        install.ExitCode.ShouldBe(0, install.ToString());
        return install.Stdout.Trim().Split('\n')[^1];
    }
}
