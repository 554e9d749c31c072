using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// A pool deployed with <c>--replicas 0..2</c> (docs/tasks.md, "Scaling a pool"): placed on one agent by its deploy, it goes
/// to no agent once idle, a call of one of its tasks places it again and gets its result, and idle again it goes back to
/// none. Real processes: `skiff server` (its idle period 2 s), an agent for the calling run and two for the pool.
/// </summary>
public sealed class PoolScalingTests : IDisposable
{
    private static readonly TimeSpan Deadline = EmbeddedPlatform.ActivationDeadline;
    private readonly Workspace _workspace = new();

    private const string Tasks = """
            jobs.Task("double", (TaskContext context, int n) => Task.FromResult(n * 2));

            jobs.Job("call", "Calls double on the pool and logs its result")
                .Parameter("n", 21)
                .Run(async context => context.Logger.LogInformation("result {Result}", await context.CallAsync<int, int>("pool", "double", context.Parameters.Get<int>("n"))));

            // A small ETL as a DAG
        """;

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task A_pool_of_0_to_2_goes_to_no_agent_when_idle_and_is_placed_again_by_a_call_that_then_succeeds()
    {
        var project = PlatformFixture.SharedVariant("scale-tasks", text => text.Replace("    // A small ETL as a DAG", Tasks, StringComparison.Ordinal));
        await using var server = RunningProcess.Start("dotnet", [Skiff, "server", "--data", _workspace.PathTo("server"), "--port", "0", "--json", "--pool-idle", "2s", "--agent-grace", "10m"], _workspace.Root, Home);
        var ready = JsonNode.Parse(await server.WaitForLineAsync(line => line.StartsWith('{'), Deadline))!;
        var url = (string)ready["url"]!;
        var token = File.ReadAllText((string)ready["token_file"]!).Trim();
        var client = new Dictionary<string, string>(Home) { ["SKIFF_URL"] = url, ["SKIFF_TOKEN"] = token };
        await using var caller = StartAgent(url, token, "caller", "role=caller");
        await using var first = StartAgent(url, token, "worker-1", "role=pool");
        await using var second = StartAgent(url, token, "worker-2", "role=pool");
        foreach (var agent in new[] { "caller", "worker-1", "worker-2" })
        {
            await WaitForAgentAsync(client, agent);
        }

        // Bad ranges are refused before anything is built or deployed.
        var reversed = await SkiffAsync(client, "deploy", project, "--location", "pool", "--on", "role=pool", "--replicas", "3..1");
        var notNumber = await SkiffAsync(client, "deploy", project, "--location", "pool", "--on", "role=pool", "--replicas", "x..2");
        var tooMany = await SkiffAsync(client, "deploy", project, "--location", "pool", "--on", "role=pool", "--replicas", "0..101");
        reversed.ExitCode.ShouldNotBe(0, reversed.ToString());
        reversed.Stderr.ShouldContain("--replicas: '3..1' has its fewest above its most", Case.Sensitive, reversed.ToString());
        notNumber.ExitCode.ShouldNotBe(0, notNumber.ToString());
        notNumber.Stderr.ShouldContain("--replicas: 'x..2' is not a number of replicas", Case.Sensitive, notNumber.ToString());
        tooMany.ExitCode.ShouldNotBe(0, tooMany.ToString());
        tooMany.Stderr.ShouldContain("--replicas: '0..101' is out of range", Case.Sensitive, tooMany.ToString());
        (await LocationAsync(client, "pool")).ShouldBeNull("nothing was deployed");

        // Its deploy activates it on one agent (its health and tasks are learnt so); idle, it goes to none.
        var beforeDeploy = server.LineCount;
        var pool = await SkiffAsync(client, "deploy", project, "--location", "pool", "--on", "role=pool", "--replicas", "0..2");
        pool.ExitCode.ShouldBe(0, pool.ToString());
        await server.WaitForLineAsync(line => line.Contains("pool pool scaled down off agent worker-", StringComparison.Ordinal) && line.Contains("on 0 agent(s) now", StringComparison.Ordinal), Deadline, after: beforeDeploy);
        await WaitForAgentsAsync(client, "pool", 0);
        var deployed = (await LocationAsync(client, "pool"))!;
        ((int?)deployed["min_replicas"]).ShouldBe(0);
        ((int?)deployed["replicas"]).ShouldBe(2);
        var table = await SkiffAsync(client, "locations");
        table.Stdout.ShouldContain("REPLICAS", Case.Sensitive, table.ToString());
        table.Stdout.ShouldContain("0 of 0..2", Case.Sensitive, table.ToString());

        // A call for the pool at zero waits queued, places it, and gets its result.
        var callerDeploy = await SkiffAsync(client, "deploy", project, "--location", "caller", "--on", "role=caller");
        callerDeploy.ExitCode.ShouldBe(0, callerDeploy.ToString());
        var beforeRun = server.LineCount;
        var run = await SkiffAsync(client, "run", "caller", "call", "--param", "n=21");
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("result 42", Case.Sensitive, run.ToString());
        await server.WaitForLineAsync(line => line.Contains("pool pool has 1 task(s) ready or in flight and 0 run(s) not ended: placed on 0 agent(s), scaling to 1", StringComparison.Ordinal), Deadline, after: beforeRun);

        // Idle again: back to none, off an agent whose worker held no task (logged as it happens, after the run).
        await server.WaitForLineAsync(line => line.Contains("pool pool scaled down off agent worker-", StringComparison.Ordinal), Deadline, after: beforeRun);
        await WaitForAgentsAsync(client, "pool", 0);
        ((int?)(await LocationAsync(client, "caller"))!["replicas"]).ShouldBe(1, "a location deployed without a range stays fixed");
        (await LocationAsync(client, "caller"))!["agents"]!.AsArray().Select(a => (string?)a).ShouldBe(["caller"]);

        // Kept on one agent at least (1..2), and that agent killed: the pool is placed on the other at once, not after the
        // agent grace period (10 minutes here), and a call gets its result from there.
        var kept = await SkiffAsync(client, "deploy", project, "--location", "pool", "--on", "role=pool", "--replicas", "1..2");
        kept.ExitCode.ShouldBe(0, kept.ToString());
        await WaitForAgentsAsync(client, "pool", 1);
        var on = (string)(await LocationAsync(client, "pool"))!["agents"]![0]!;
        await (on == "worker-1" ? first : second).DisposeAsync();
        var other = on == "worker-1" ? "worker-2" : "worker-1";
        var afterKill = await SkiffAsync(client, "run", "caller", "call", "--param", "n=4");
        afterKill.ExitCode.ShouldBe(0, afterKill.ToString());
        afterKill.Stdout.ShouldContain("result 8", Case.Sensitive, afterKill.ToString());
        (await LocationAsync(client, "pool"))!["agents"]!.AsArray().Select(a => (string?)a).ShouldBe([other]);
    }

    private SkiffProcesses Cli => new(_workspace);

    private static string Skiff => SkiffProcesses.Skiff;

    private Dictionary<string, string> Home => Cli.Home;

    private RunningProcess StartAgent(string url, string token, string name, string label) => Cli.StartAgent(url, token, name, label);

    private Task<CliProcess.Result> SkiffAsync(Dictionary<string, string> environment, params string[] arguments) => Cli.RunAsync(environment, arguments);

    private Task WaitForAgentAsync(Dictionary<string, string> environment, string name) => Cli.WaitForAgentAsync(environment, name);

    /// <summary>A location as `skiff locations --json` shows it; null when there is none of that name.</summary>
    private async Task<JsonObject?> LocationAsync(Dictionary<string, string> environment, string name)
    {
        var locations = await SkiffAsync(environment, "locations", "--json");
        locations.ExitCode.ShouldBe(0, locations.ToString());
        return JsonNode.Parse(locations.Stdout)!.AsArray().OfType<JsonObject>().SingleOrDefault(l => (string?)l["location"] == name);
    }

    /// <summary>Waits until the location is placed on <paramref name="count"/> agents; each look is a CLI process of its own.</summary>
    private async Task WaitForAgentsAsync(Dictionary<string, string> environment, string location, int count)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while ((await LocationAsync(environment, location))?["agents"]?.AsArray().Count != count)
        {
            deadline.Token.ThrowIfCancellationRequested();
        }
    }
}
