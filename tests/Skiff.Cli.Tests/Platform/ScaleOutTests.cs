using System.Diagnostics;
using System.Text.Json.Nodes;
using Npgsql;
using Skiff.Testing;
using Xunit.Abstractions;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// Two `skiff server` processes on one real PostgreSQL and one S3 bucket (s3rver) serving one platform, with a
/// real agent: any server answers any request, and one killed with SIGKILL in the middle of a deploy leaves
/// nothing pending. Agents run in network namespaces of their own when the tests run as root (<see cref="AgentNetwork"/>).
/// </summary>
[Collection(PostgresServer.Collection)]
public sealed partial class ScaleOutTests(PostgresServer postgres, ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    // ServerOptions.ServerGracePeriod's default: how long a silent server is given before others take over.
    private static readonly TimeSpan ServerGrace = TimeSpan.FromSeconds(10);
    private readonly Workspace _workspace = new();
    private readonly List<Process> _started = [];
    private readonly AgentNetwork _agents = new();

    public void Dispose()
    {
        foreach (var process in _started)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }

            process.Dispose();
        }

        _agents.Dispose();
        _workspace.Dispose();
    }

    [Fact]
    public async Task A_deploy_through_one_server_a_run_through_the_other_and_a_follower_on_the_first_all_reach_the_agent_on_the_second()
    {
        var (database, metadata) = await NewDatabaseAsync();
        var (_, urlA, token) = await StartServerAsync("server-a", metadata, token: null);
        var (_, urlB, _) = await StartServerAsync("server-b", metadata, token);
        var hello = PlatformFixture.SharedHello;
        // The agent connects to B (its first URL): A must pass the activation to B.
        Start("agent", "--server", $"{urlB},{urlA}", "--token", token, "--cache", _workspace.PathTo("agent"), "--name", "worker-1");

        var deploy = await SkiffAsync("deploy", hello, "--location", "pg", "--server", urlA, "--token", token);
        var run = await SkiffAsync("run", "pg", "etl", "--param", "rows=4000", "--detach", "--json", "--server", urlB, "--token", token);
        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        run.ExitCode.ShouldBe(0, run.ToString());
        var runId = (string?)JsonNode.Parse(run.Stdout)?["run"] ?? "missing";
        // The follower must end with the run: a deadline against one that hangs (it once measured 30 s, which a loaded
        // machine's process starts and run alone could use up).
        var logs = await CliProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "logs", runId, "--follow", "--json", "--server", urlA, "--token", token], _workspace.Root, _workspace.PathTo("home"), deadline: Deadline);
        var status = await SkiffAsync("runs", "pg", "--json", "--server", urlA, "--token", token);

        logs.ExitCode.ShouldBe(0, logs.ToString());
        var events = logs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!).ToList();
        ((string?)events[^1]["type"]).ShouldBe("run_succeeded", "the follower on A ends with the run's end, which the agent sent to B");
        events.Select(e => (long)e["seq"]!).ShouldBe(Enumerable.Range(1, events.Count).Select(i => (long)i), "every event once, in order");
        ((string?)JsonNode.Parse(status.Stdout)!.AsArray().Single()!["status"]).ShouldBe("succeeded");
        var drivenBy = (string)(await ScalarAsync(database, "SELECT server FROM deployments;"))!;
        var agentOn = (string)(await ScalarAsync(database, "SELECT server FROM agents WHERE name = 'worker-1';"))!;
        drivenBy.ShouldNotBe(agentOn, "the deploy went through A and the agent is on B");
    }

    [Fact]
    public async Task A_server_killed_while_its_agent_activates_a_deploy_leaves_it_failed_by_the_other_and_the_agent_deploys_on_through_it()
    {
        var (database, metadata) = await NewDatabaseAsync();
        var (serverA, urlA, token) = await StartServerAsync("server-a", metadata, token: null);
        var (_, urlB, _) = await StartServerAsync("server-b", metadata, token);
        // Main takes 8 s before it hands over to Skiff: the activation is still going when A is killed.
        var slow = PlatformFixture.SlowToStart;
        Start("agent", "--server", $"{urlA},{urlB}", "--token", token, "--cache", _workspace.PathTo("agent"), "--name", "worker-1");

        await BuildAsync(slow);
        var cut = Start("deploy", slow, "--location", "pg", "--server", urlA, "--token", token);
        await WaitUntilAsync(async () => (long)(await ScalarAsync(database, "SELECT count(*) FROM deployments WHERE outcome = 'pending';"))! == 1, cut);
        serverA.Kill();
        var killedAt = DateTime.UtcNow;
        await WaitUntilAsync(async () => (long)(await ScalarAsync(database, "SELECT count(*) FROM deployments WHERE outcome = 'pending';"))! == 0);
        // When B failed it, as B recorded it, and A's last heartbeat: how often the test looked does not count.
        var failedAt = (DateTime)(await ScalarAsync(database, "SELECT finished_at FROM deployments;"))!;
        var lastHeartbeat = (DateTime)(await ScalarAsync(database, "SELECT s.heartbeat_at FROM deployments d JOIN servers s ON s.id = d.server;"))!;
        await cut.WaitForExitAsync();
        var row = await RowAsync(database, "SELECT outcome, coalesce(error, ''), server FROM deployments;");
        var again = await SkiffAsync("deploy", slow, "--location", "pg", "--server", urlB, "--token", token);
        var history = await SkiffAsync("history", "pg", "--json", "--server", urlB, "--token", token);

        cut.ExitCode.ShouldNotBe(0, "the deploy's server died under it");
        row[0].ShouldBe("failed");
        row[1].ShouldContain($"server '{row[2]}', which drove this deployment, stopped before it finished");
        (failedAt - lastHeartbeat).ShouldBeGreaterThanOrEqualTo(ServerGrace, "B waited out the grace period after A's last heartbeat");
        (failedAt - killedAt).ShouldBeLessThan(ServerGrace + TimeSpan.FromSeconds(8), "failed within the grace period and a heartbeat or two");
        again.ExitCode.ShouldBe(0, again.ToString());
        var outcomes = JsonNode.Parse(history.Stdout)!.AsArray().Select(d => (string?)d!["outcome"]).ToList();
        outcomes.ShouldBe(["live", "failed"]);
    }

    [Fact]
    public async Task A_fleet_places_by_label_refuses_what_fits_nowhere_drains_and_fails_over_an_agent_killed_mid_run()
    {
        var (database, metadata) = await NewDatabaseAsync();
        var grace = TimeSpan.FromSeconds(3);
        var (_, urlA, token) = await StartServerAsync("server-a", metadata, token: null, "--agent-grace", "3s");
        var (_, urlB, _) = await StartServerAsync("server-b", metadata, token, "--agent-grace", "3s");
        var hello = PlatformFixture.SharedHello;
        var agentA = Start("agent", "--server", $"{urlA},{urlB}", "--token", token, "--cache", _workspace.PathTo("agent-a"), "--name", "w-a", "--label", "zone=a");
        Start("agent", "--server", $"{urlB},{urlA}", "--token", token, "--cache", _workspace.PathTo("agent-b"), "--name", "w-b", "--label", "zone=b", "--label", "gpu=h200");
        var agentC = Start("agent", "--server", $"{urlB},{urlA}", "--token", token, "--cache", _workspace.PathTo("agent-c"), "--name", "w-c", "--label", "zone=b");
        await WaitUntilAsync(async () => (await AgentsAsync(urlA, token)).Count(a => (string?)a["state"] == "ready") == 3);

        var pinned = await SkiffAsync("deploy", hello, "--location", "gpu", "--on", "gpu=h200", "--server", urlA, "--token", token);
        var nowhere = await SkiffAsync("deploy", hello, "--location", "nowhere", "--on", "gpu=a100", "--server", urlB, "--token", token);
        var work = await SkiffAsync("deploy", hello, "--location", "work", "--server", urlA, "--token", token);
        pinned.ExitCode.ShouldBe(0, pinned.ToString());
        work.ExitCode.ShouldBe(0, work.ToString());
        nowhere.ExitCode.ShouldNotBe(0);
        nowhere.Stderr.ShouldContain("'nowhere' needs an agent with gpu=a100, and none can host it; checked w-a (no gpu); w-b (gpu=h200, not a100); w-c (no gpu).");
        (await PlacedOnAsync(urlB, token, "gpu")).ShouldBe(["w-b"]);
        var first = (await PlacedOnAsync(urlB, token, "work")).ShouldHaveSingleItem();
        first.ShouldNotBe("w-b", "w-b has a location already; w-a and w-c have none");
        var other = first == "w-a" ? "w-c" : "w-a";

        var drain = await SkiffAsync("agent", "drain", first!, "--server", urlB, "--token", token);
        drain.ExitCode.ShouldBe(0, drain.ToString());
        drain.Stdout.ShouldContain($"work: moved to {other}");
        drain.Stdout.ShouldContain($"agent {first} is drained");
        (await PlacedOnAsync(urlA, token, "work")).ShouldBe([other]);
        (await SkiffAsync("agent", "undrain", first!, "--server", urlA, "--token", token)).ExitCode.ShouldBe(0);

        var started = await SkiffAsync("run", "work", "etl", "--param", "rows=400000", "--detach", "--json", "--server", urlA, "--token", token);
        started.ExitCode.ShouldBe(0, started.ToString());
        var runId = (string)JsonNode.Parse(started.Stdout)!["run"]!;
        await WaitUntilAsync(async () => (await RunAsync(urlB, token, runId))["agent"]?.GetValue<string>() == other);
        (other == "w-c" ? agentC : agentA).Kill();
        var killedAt = DateTime.UtcNow;
        await WaitUntilAsync(async () => await PlacedOnAsync(urlB, token, "work") is [var agent] && agent != other);
        // When the server recorded the new placement (after the new agent reported the location healthy): each look
        // here starts a CLI process, and how long those take on a loaded machine does not count.
        var movedAfter = (DateTime)(await ScalarAsync(database, "SELECT assigned_at FROM placements WHERE location = 'work';"))! - killedAt;
        await WaitUntilAsync(async () => (string?)(await RunAsync(urlA, token, runId))["status"] == "failed");
        var lost = await RunAsync(urlA, token, runId);
        var after = await SkiffAsync("run", "work", "hello", "--server", urlB, "--token", token);
        var agents = await AgentsAsync(urlA, token);

        movedAfter.ShouldBeLessThan(grace + TimeSpan.FromSeconds(20), "moved within the grace period, a fleet check and an activation");
        ((string?)lost["reason"] ?? "").ShouldContain($"agent '{other}', which ran this run,");
        after.ExitCode.ShouldBe(0, after.ToString());
        agents.Single(a => (string?)a["name"] == other)["state"]!.GetValue<string>().ShouldBe("gone");
        agents.Single(a => (string?)a["name"] == "w-b")["labels"]!.ToJsonString().ShouldBe("""{"gpu":"h200","zone":"b"}""");
    }

    [Fact]
    public async Task PostgreSQL_restarted_in_the_middle_of_a_deploy_and_of_a_followed_run_leaves_nothing_pending_loses_no_event_and_the_platform_goes_on()
    {
        var (database, metadata) = await NewDatabaseAsync();
        var (_, urlA, token) = await StartServerAsync("server-a", metadata, token: null);
        var (_, urlB, _) = await StartServerAsync("server-b", metadata, token);
        var hello = PlatformFixture.SharedHello;
        // Main takes 8 s before it hands over to Skiff: PostgreSQL is away and back while the activation goes on. (The
        // program of the test above, built once for both.)
        var slow = PlatformFixture.SlowToStart;
        // The agent is on B; deploys and runs go through A, which passes them to B on the bus (in PostgreSQL too).
        Start("agent", "--server", $"{urlB},{urlA}", "--token", token, "--cache", _workspace.PathTo("agent"), "--name", "worker-1");
        (await SkiffAsync("deploy", hello, "--location", "pg", "--server", urlA, "--token", token)).ExitCode.ShouldBe(0);

        // A deploy in the middle: PostgreSQL stops while the agent activates it, a request meanwhile is refused, it starts again.
        await BuildAsync(slow);
        var deploying = Start("deploy", slow, "--location", "pg", "--server", urlA, "--token", token);
        await WaitUntilAsync(async () => (long)(await ScalarAsync(database, "SELECT count(*) FROM deployments WHERE outcome = 'pending';"))! == 1, deploying);
        await postgres.StopAsync();
        var refused = await SkiffAsync("history", "pg", "--server", urlB, "--token", token);
        await postgres.StartAsync();
        await WaitForExitAsync(deploying);
        var deployHistory = await SkiffAsync("history", "pg", "--json", "--server", urlB, "--token", token);

        refused.ExitCode.ShouldBe(1, refused.ToString());
        var refusal = refused.Stderr.Split('\n').Where(line => line.StartsWith("error:", StringComparison.Ordinal)).ShouldHaveSingleItem(refused.ToString());
        refusal.ShouldContain($"the metadata database postgresql://postgres@127.0.0.1:{postgres.Port}/{database} cannot be reached");
        refusal.ShouldContain("the same request can be repeated once it is back");
        deployHistory.ExitCode.ShouldBe(0, deployHistory.ToString());
        var outcomes = JsonNode.Parse(deployHistory.Stdout)!.AsArray().Select(d => (string?)d!["outcome"]).ToList();
        outcomes.Count.ShouldBe(2, deployHistory.Stdout);
        outcomes[0].ShouldBeOneOf(["live", "failed"], "the deploy in the middle of the outage ended one way or the other");
        outcomes[1].ShouldBe("live");
        (deploying.ExitCode == 0).ShouldBe(outcomes[0] == "live", "the CLI says what history says");

        // A run in the middle, followed through A while B stores its events: PostgreSQL stops and starts again under it.
        var started = await SkiffAsync("run", "pg", "etl", "--param", "rows=20000", "--detach", "--json", "--server", urlA, "--token", token);
        started.ExitCode.ShouldBe(0, started.ToString());
        var runId = (string)JsonNode.Parse(started.Stdout)!["run"]!;
        var follower = Start("logs", runId, "--follow", "--json", "--server", urlA, "--token", token);
        using var firstLine = new CancellationTokenSource(Deadline);
        // Its stream has begun (a request that comes while PostgreSQL is away is refused, as above).
        var first = await follower.StandardOutput.ReadLineAsync(firstLine.Token) ?? throw new InvalidOperationException(await follower.StandardError.ReadToEndAsync());

        var followed = follower.StandardOutput.ReadToEndAsync();
        var runningWhenStopped = (string?)await ScalarAsync(database, $"SELECT status FROM runs WHERE id = '{runId}';");
        await postgres.StopAsync();
        var refusedRuns = await SkiffAsync("runs", "pg", "--server", urlA, "--token", token);
        await postgres.StartAsync();
        await WaitForExitAsync(follower);
        var events = (await followed).Split('\n', StringSplitOptions.RemoveEmptyEntries).Prepend(first).Select(line => JsonNode.Parse(line)!).ToList();
        var stored = await RowAsync(database, $"SELECT status, (SELECT count(*)::text FROM run_events WHERE run_id = '{runId}') FROM runs WHERE id = '{runId}';");

        runningWhenStopped.ShouldBe("running", "PostgreSQL stopped in the middle of the run");
        refusedRuns.ExitCode.ShouldBe(1, refusedRuns.ToString());
        refusedRuns.Stderr.ShouldContain("cannot be reached");
        follower.ExitCode.ShouldBe(0, await follower.StandardError.ReadToEndAsync());
        events.Select(e => (long)e["seq"]!).ShouldBe(Enumerable.Range(1, events.Count).Select(i => (long)i), "every event once, in order");
        ((string?)events[^1]["type"]).ShouldBe("run_succeeded");
        events.Count.ShouldBeGreaterThan(10, "the run went on through the outage");
        stored.ShouldBe(["succeeded", events.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)]);

        // Nothing was restarted but PostgreSQL: another deploy and run go through, each server both ways.
        var again = await SkiffAsync("deploy", hello, "--location", "pg", "--server", urlB, "--token", token);
        var run = await SkiffAsync("run", "pg", "hello", "--server", urlA, "--token", token);
        again.ExitCode.ShouldBe(0, again.ToString());
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("Hello, world!");
        (await ScalarAsync(database, "SELECT count(*) FROM deployments WHERE outcome = 'pending';")).ShouldBe(0L);
    }

    [Fact]
    public async Task With_S3_stopped_a_deploy_fails_naming_it_and_records_nothing_a_live_location_runs_on_through_the_other_server_and_once_S3_is_back_deploys_go_through()
    {
        // An S3 of its own: the shared one serves other tests.
        await using var s3 = await S3Server.StartAsync();
        var bucket = await s3.CreateBucketAsync();
        var (_, metadata) = await NewDatabaseAsync();
        _blobs = $"s3://{bucket}/platform?endpoint={s3.Endpoint}";
        _s3Port = s3.Endpoint.Port; // agents in a network namespace of their own reach this S3, not the shared one
        var (_, urlA, token) = await StartServerAsync("server-a", metadata, token: null);
        var (_, urlB, _) = await StartServerAsync("server-b", metadata, token);
        var hello = PlatformFixture.SharedHello;
        var changed = PlatformFixture.Howdy;
        Start("agent", "--server", $"{urlA},{urlB}", "--token", token, "--cache", _workspace.PathTo("agent"), "--name", "worker-1");
        var first = await SkiffAsync("deploy", hello, "--location", "pg", "--server", urlA, "--token", token);
        first.ExitCode.ShouldBe(0, first.ToString());
        var locationBefore = await LocationAsync(urlA, token, "pg");
        var blobsBefore = await s3.KeysAsync(bucket, "platform/blobs/");

        await s3.StopAsync();
        var blocked = await SkiffAsync("deploy", changed, "--location", "pg", "--server", urlA, "--token", token);
        // The location's blobs are in the agent's cache: a run through B (passed to A, which holds the agent) needs no S3.
        var run = await SkiffAsync("run", "pg", "hello", "--server", urlB, "--token", token);
        var history = await SkiffAsync("history", "pg", "--json", "--server", urlB, "--token", token);
        var locationDuring = await LocationAsync(urlA, token, "pg");
        await s3.StartAgainAsync();
        var blobsAfter = await s3.KeysAsync(bucket, "platform/blobs/");
        var again = await SkiffAsync("deploy", changed, "--location", "pg", "--server", urlB, "--token", token);
        var changedRun = await SkiffAsync("run", "pg", "hello", "--server", urlA, "--token", token);
        var historyAfter = await SkiffAsync("history", "pg", "--json", "--server", urlA, "--token", token);

        blocked.ExitCode.ShouldBe(1, blocked.ToString());
        var error = blocked.Stderr.Split('\n').Where(line => line.StartsWith("error:", StringComparison.Ordinal)).ShouldHaveSingleItem(blocked.ToString());
        error.ShouldContain($"the blob store s3://{bucket}/platform/ at {s3.Endpoint.GetLeftPart(UriPartial.Authority)} could not");
        error.ShouldContain("Check that it runs and is reachable");
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("Hello, world!");
        history.ExitCode.ShouldBe(0, history.ToString());
        JsonNode.Parse(history.Stdout)!.AsArray().Select(d => (string?)d!["outcome"]).ShouldBe(["live"], history.Stdout);
        locationDuring.ShouldBe(locationBefore, "the location is as it was: same release, deployment and agents");
        blobsAfter.Order(StringComparer.Ordinal).ShouldBe(blobsBefore.Order(StringComparer.Ordinal), "no blob of the failed deploy reached a final key");
        again.ExitCode.ShouldBe(0, again.ToString());
        changedRun.ExitCode.ShouldBe(0, changedRun.ToString());
        changedRun.Stdout.ShouldContain("Howdy, world!");
        JsonNode.Parse(historyAfter.Stdout)!.AsArray().Select(d => (string?)d!["outcome"]).ShouldBe(["live", "live"], historyAfter.Stdout);
    }

    private async Task<List<JsonNode>> AgentsAsync(string url, string token)
    {
        var listed = await SkiffAsync("agents", "--json", "--server", url, "--token", token);
        listed.ExitCode.ShouldBe(0, listed.ToString());
        return [.. JsonNode.Parse(listed.Stdout)!.AsArray().OfType<JsonNode>()];
    }

    private async Task<List<string?>> PlacedOnAsync(string url, string token, string location)
    {
        var listed = await SkiffAsync("locations", "--json", "--server", url, "--token", token);
        listed.ExitCode.ShouldBe(0, listed.ToString());
        var found = JsonNode.Parse(listed.Stdout)!.AsArray().Single(l => (string?)l!["location"] == location)!;
        return [.. found["agents"]!.AsArray().Select(a => (string?)a)];
    }

    private async Task<JsonNode> RunAsync(string url, string token, string runId)
    {
        var listed = await SkiffAsync("runs", "--json", "--server", url, "--token", token);
        listed.ExitCode.ShouldBe(0, listed.ToString());
        return JsonNode.Parse(listed.Stdout)!.AsArray().Single(r => (string?)r!["run"] == runId)!;
    }

    private string _blobs = "";
    private int _s3Port;

    /// <summary>A new database, and a new bucket for the servers' blobs (each server has a data folder of its own).</summary>
    private async Task<(string Database, string Url)> NewDatabaseAsync()
    {
        var s3 = await S3Server.Shared;
        _blobs = $"s3://{await s3.CreateBucketAsync()}/platform?endpoint={s3.Endpoint}";
        _s3Port = s3.Endpoint.Port;
        var database = new NpgsqlConnectionStringBuilder(await postgres.CreateDatabaseAsync()).Database!;
        return (database, postgres.Url(database));
    }

    private async Task<object?> ScalarAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(postgres.ConnectionString(database) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    private async Task<string[]> RowAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(postgres.ConnectionString(database) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        (await reader.ReadAsync()).ShouldBeTrue();
        return [.. Enumerable.Range(0, reader.FieldCount).Select(i => reader.GetString(i))];
    }

    /// <summary>Polls the condition (a query) until it holds; fails if <paramref name="mustNotExit"/> ends first.</summary>
    private static async Task WaitUntilAsync(Func<Task<bool>> condition, Process? mustNotExit = null)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (!await condition())
        {
            if (mustNotExit is { HasExited: true })
            {
                throw new InvalidOperationException($"the process ended first: {await mustNotExit.StandardError.ReadToEndAsync()}");
            }

            // Each look opens a connection (a PostgreSQL backend) or starts a CLI process: looking back to back kept a
            // core busy on a two-core machine for minutes, slowing what the test waits for and every test beside it.
            await Task.Delay(100, deadline.Token);
        }
    }

    /// <summary>Starts a server in a data folder of its own; the second one is given the first one's token, as an operator would.</summary>
    private async Task<(Process Server, string Url, string Token)> StartServerAsync(string name, string metadata, string? token, params string[] options)
    {
        var data = _workspace.PathTo(name);
        if (token is not null)
        {
            Directory.CreateDirectory(data);
            File.WriteAllText(Path.Combine(data, "token"), token);
        }

        // A port of its own when given (a server started again where its agents look for it), a free one otherwise.
        string[] port = options.Contains("--port") ? [] : ["--port", "0"];
        var server = Start(["server", "--data", data, .. port, "--metadata", metadata, "--blobs", _blobs, .. options]);
        using var deadline = new CancellationTokenSource(Deadline);
        while (await server.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
        {
            if (line.StartsWith("skiff server listening on ", StringComparison.Ordinal))
            {
                return (server, line.Split(' ')[4], File.ReadAllText(Path.Combine(data, "token")).Trim());
            }
        }

        throw new InvalidOperationException($"the server ended before it listened: {await server.StandardError.ReadToEndAsync()}");
    }

    private Process Start(params string[] arguments)
    {
        var startInfo = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _workspace.Root,
        };
        startInfo.Environment["SKIFF_HOME"] = _workspace.PathTo("home");
        foreach (var (name, value) in S3Server.Credentials)
        {
            startInfo.Environment[name] = value;
        }

        if (arguments is ["agent", "--server", var servers, ..])
        {
            return StartAgent(startInfo, servers);
        }

        var process = Process.Start(startInfo)!;
        _started.Add(process);
        return process;
    }

    /// <summary>An agent reaches its servers and the blob store, and nothing else (its cache folder is its own already).</summary>
    private Process StartAgent(ProcessStartInfo startInfo, string servers)
    {
        int[] ports = [.. servers.Split(',').Select(url => new Uri(url).Port), _s3Port];
        var agent = _agents.Start(startInfo, ports);
        _started.Add(agent);
        if (_agents.NamespaceOf(agent) is not { } name)
        {
            output.WriteLine($"agent {agent.Id} runs as a plain process, not in a network namespace of its own: {_agents.Unavailable}");
            return agent;
        }

        output.WriteLine($"agent {agent.Id} runs in network namespace {name}, which reaches 127.0.0.1:{string.Join(",", ports)}");
        AgentNetwork.Reaches(name, postgres.Port).ShouldBeFalse("an agent reaches what it is given and nothing else: not PostgreSQL");
        return agent;
    }

    /// <summary>
    /// Builds a project into the CLI's store, so that a deploy of it started next reaches the servers at once: the waits
    /// for its deployment to show are then not also waits for a fresh restore and compile, which took more than their
    /// 90 s on a loaded machine. The build has a deadline of its own, against a hang.
    /// </summary>
    private async Task BuildAsync(string project)
    {
        var build = await CliProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "build", project], _workspace.Root, _workspace.PathTo("home"), deadline: TimeSpan.FromMinutes(10));
        build.ExitCode.ShouldBe(0, build.ToString());
    }

    private Task<CliProcess.Result> SkiffAsync(params string[] arguments) =>
        CliProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments], _workspace.Root, _workspace.PathTo("home"));

    /// <summary>What a location's listing says of where it is: its live release and deployment, its agents, when it changed.</summary>
    private async Task<string> LocationAsync(string url, string token, string location)
    {
        var listed = await SkiffAsync("locations", "--json", "--server", url, "--token", token);
        listed.ExitCode.ShouldBe(0, listed.ToString());
        var found = JsonNode.Parse(listed.Stdout)!.AsArray().Single(l => (string?)l!["location"] == location)!;
        return string.Join(' ', found["release"], found["deployment"], found["agents"]!.ToJsonString(), found["updated_at"]);
    }

    /// <summary>Waits for a process started with <see cref="Start"/> to end, within the deadline.</summary>
    private static async Task WaitForExitAsync(Process process)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        await process.WaitForExitAsync(deadline.Token);
    }
}
