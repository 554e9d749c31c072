using System.Diagnostics;
using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>`skiff up`, `skiff server` and `skiff agent` as real processes, the way a user starts them.</summary>
public sealed class ProcessTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Skiff_up_writes_a_private_client_json_serves_deploys_and_runs_and_stops_on_sigterm()
    {
        var data = _workspace.PathTo("data");
        var hello = PlatformFixture.SharedHello;
        using var up = Start("up", "--data", data, "--port", "0");
        var upErrors = up.StandardError.ReadToEndAsync();
        var announced = await ReadUntilAsync(up, line => line.StartsWith("skiff is up at ", StringComparison.Ordinal));
        var isolation = await ReadUntilAsync(up, line => line.StartsWith("isolation: ", StringComparison.Ordinal));
        var client = Path.Combine(data, "client.json");

        var deploy = await SkiffAsync("deploy", hello, "--location", "embedded", "--data", data);
        var run = await SkiffAsync("run", "embedded", "hello", "--data", data);
        var agents = await SkiffAsync("agents", "--data", data);
        var agentsJson = await SkiffAsync("agents", "--json", "--data", data);
        var gc = await SkiffAsync("gc", "--data", data);
        Signal(up, "TERM");
        await StoppedAsync(up, upErrors);

        announced.ShouldContain("http://127.0.0.1:");
        // scripts/test.sh installs bubblewrap and the tests run as root: the deploy and run above ran sandboxed.
        isolation.ShouldStartWith("isolation: sandbox: bubblewrap, a user per location");
        isolation.ShouldContain("limits: cgroup v1 memory, cpu, pids");
        File.GetUnixFileMode(client).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.GetUnixFileMode(Path.Combine(data, "server", "token")).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        ((string?)JsonNode.Parse(File.ReadAllText(client))!["token"]).ShouldStartWith("skiff_");
        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("Hello, world!");
        // The fleet says which isolation each agent keeps, in the table and in full in JSON.
        agents.ExitCode.ShouldBe(0, agents.ToString());
        agents.Stdout.ShouldContain("ISOLATION");
        agents.Stdout.ShouldContain("sandbox, cgroups");
        var isolationJson = JsonNode.Parse(agentsJson.Stdout)!.AsArray().Single()!["capacity"]!["isolation"]!;
        ((bool)isolationJson["sandboxed"]!, (bool)isolationJson["cgroups"]!).ShouldBe((true, true));
        ("isolation: " + (string)isolationJson["description"]!).ShouldBe(isolation);
        gc.ExitCode.ShouldBe(0, gc.ToString());
        // After one deploy every blob on the server belongs to the live release: nothing to delete, all kept.
        gc.Stdout.ShouldContain("deleted 0 blob(s)");
        gc.Stdout.ShouldContain("kept everything 1 release(s) use");
        up.ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task Skiff_up_that_cannot_sandbox_refuses_to_host_unless_told_no_sandbox_and_then_says_so_loudly()
    {
        // A PATH with dotnet and nothing else: no bwrap, so no sandbox.
        var bin = _workspace.PathTo("bin-without-bwrap");
        Directory.CreateDirectory(bin);
        var dotnet = Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(folder => Path.Combine(folder, "dotnet")).First(File.Exists);
        File.CreateSymbolicLink(Path.Combine(bin, "dotnet"), dotnet);
        var withoutBwrap = new Dictionary<string, string> { ["PATH"] = bin };

        var refused = await CliProcess.RunAsync(dotnet, [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "up", "--data", _workspace.PathTo("refused"), "--port", "0"], _workspace.Root, _workspace.PathTo("home"), withoutBwrap, Deadline);
        var startInfo = CliProcess.StartInfo(dotnet, [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "up", "--data", _workspace.PathTo("unsandboxed"), "--port", "0", "--json", "--no-sandbox"], _workspace.Root, withoutBwrap);
        using var up = Process.Start(startInfo)!;
        var stderr = up.StandardError.ReadToEndAsync();
        var ready = JsonNode.Parse(await ReadUntilAsync(up, _ => true))!;
        // At once: a stop asked for just as `skiff up` says it is ready is heard, not missed.
        Signal(up, "TERM");
        await StoppedAsync(up, stderr);
        var warning = await stderr;

        refused.ExitCode.ShouldNotBe(0);
        refused.Stderr.ShouldContain("this agent cannot sandbox locations: bwrap (Debian's bubblewrap) is not installed");
        refused.Stderr.ShouldContain("--no-sandbox");
        refused.Stdout.ShouldNotContain("skiff is up");
        ((string)ready["isolation"]!).ShouldStartWith("no sandbox (--no-sandbox)");
        warning.ShouldContain("WARNING: --no-sandbox: locations run WITHOUT a sandbox");
        up.ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task A_separate_server_and_agent_serve_a_deploy()
    {
        var data = _workspace.PathTo("server");
        var hello = PlatformFixture.SharedHello;
        using var server = Start("server", "--data", data, "--port", "0");
        var serverErrors = server.StandardError.ReadToEndAsync();
        var listening = await ReadUntilAsync(server, line => line.StartsWith("skiff server listening on ", StringComparison.Ordinal));
        var url = listening.Split(' ')[4];
        var token = File.ReadAllText(Path.Combine(data, "token")).Trim();
        using var agent = Start("agent", "--server", url, "--token", token, "--cache", _workspace.PathTo("agent"), "--name", "worker-1");
        var agentErrors = agent.StandardError.ReadToEndAsync();

        var deploy = await SkiffAsync("deploy", hello, "--location", "split", "--server", url, "--token", token);
        var run = await SkiffAsync("run", "split", "hello", "--server", url, "--token", token);
        var noToken = await SkiffAsync("locations", "--server", url);
        Signal(agent, "TERM");
        Signal(server, "TERM");
        await StoppedAsync(agent, agentErrors);
        await StoppedAsync(server, serverErrors);

        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("Hello, world!");
        noToken.ExitCode.ShouldNotBe(0);
        noToken.Stderr.ShouldContain("401");
    }

    [Fact]
    public async Task Up_json_says_where_it_listens_in_one_line_and_a_port_in_use_is_one_clear_line()
    {
        var data = _workspace.PathTo("json-data");
        using var up = Start("up", "--data", data, "--port", "0", "--json");
        // Read as it comes, so a full pipe can never hold the process, and shown if it does not stop.
        var upErrors = up.StandardError.ReadToEndAsync();
        var ready = JsonNode.Parse(await ReadUntilAsync(up, _ => true))!;
        var port = new Uri((string)ready["url"]!).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var secondUp = await SkiffAsync("up", "--data", _workspace.PathTo("second"), "--port", port);
        var sameData = await SkiffAsync("up", "--data", data, "--port", "0");
        var server = await SkiffAsync("server", "--data", _workspace.PathTo("third"), "--port", port);
        var gc = await SkiffAsync("gc", "--data", data, "--json");
        Signal(up, "TERM");
        await StoppedAsync(up, upErrors);
        using var server2 = Start("server", "--data", _workspace.PathTo("server-json"), "--port", "0", "--json");
        var server2Errors = server2.StandardError.ReadToEndAsync();
        var serverReady = JsonNode.Parse(await ReadUntilAsync(server2, _ => true))!;
        Signal(server2, "TERM");
        await StoppedAsync(server2, server2Errors);

        ((string?)ready["url"]).ShouldBe($"http://127.0.0.1:{port}");
        ((string?)ready["data"]).ShouldBe(data);
        ((string?)ready["client"]).ShouldBe(Path.Combine(data, "client.json"));
        File.Exists(Path.Combine(data, "client.json")).ShouldBeTrue();
        foreach (var taken in new[] { secondUp, server })
        {
            taken.ExitCode.ShouldBe(1, taken.ToString());
            taken.Stderr.Trim().Split('\n').ShouldHaveSingleItem().ShouldBe(
                $"error: port {port} on 127.0.0.1 is already in use (another `skiff up` or `skiff server`?); stop that one, or pick another port with --port (0 picks a free one).");
            taken.Stdout.ShouldBeEmpty();
        }

        // A second platform on the same data folder is refused before it touches anything; the first goes on.
        sameData.ExitCode.ShouldBe(1, sameData.ToString());
        sameData.Stderr.Trim().Split('\n').ShouldHaveSingleItem().ShouldBe(
            $"error: {Path.Combine(data, "server")} is in use by another Skiff process (pid {up.Id}, skiff server); stop that one, or give this one a folder of its own.");
        gc.ExitCode.ShouldBe(0, gc.ToString());
        var collected = JsonNode.Parse(gc.Stdout)!;
        ((int?)collected["deleted"]).ShouldBe(0);
        ((int?)collected["kept_releases"]).ShouldBe(0);
        up.ExitCode.ShouldBe(0);
        ((string?)serverReady["url"]).ShouldStartWith("http://127.0.0.1:");
        ((string?)serverReady["token_file"]).ShouldBe(Path.Combine(_workspace.PathTo("server-json"), "token"));
        server2.ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task Server_with_log_format_json_logs_one_json_object_per_line_on_stderr_and_keeps_stdout_as_it_was()
    {
        var data = _workspace.PathTo("json-logs");
        using var server = Start("server", "--data", data, "--port", "0", "--log-format", "json", "--log-level", "debug");
        var stderr = server.StandardError.ReadToEndAsync();
        var listening = await ReadUntilAsync(server, line => line.StartsWith("skiff server listening on ", StringComparison.Ordinal));
        var url = listening.Split(' ')[4];
        var badLevel = await SkiffAsync("server", "--data", _workspace.PathTo("unused"), "--log-level", "loud");
        Signal(server, "TERM");
        await StoppedAsync(server, stderr);

        var lines = (await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Length.ShouldBeGreaterThan(2, await stderr);
        var entries = lines.Select(line => JsonNode.Parse(line).ShouldBeOfType<JsonObject>()).ToList();
        entries.ShouldAllBe(e => e["Timestamp"] != null && e["LogLevel"] != null && e["Category"] != null && e["Message"] != null);
        var started = entries.Single(e => (int)e["EventId"]! == 1000);
        ((string?)started["Category"]).ShouldBe("Skiff.Server.Hosting.SkiffServerHost");
        ((string?)started["State"]!["Url"]).ShouldBe(url);
        ((string?)started["State"]!["Metadata"]).ShouldBe(Path.Combine(data, "skiff.db"));
        entries.ShouldContain(e => (int)e["EventId"]! == 1100, "the stop is logged");
        entries.ShouldContain(e => (string?)e["LogLevel"] == "Debug", "--log-level debug lets the host's debug lines through");
        server.ExitCode.ShouldBe(0);
        badLevel.ExitCode.ShouldBe(2, badLevel.ToString());
        badLevel.Stderr.ShouldContain("--log-level: 'loud' is not a level");
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
        return Process.Start(startInfo)!;
    }

    private Task<CliProcess.Result> SkiffAsync(params string[] arguments) =>
        CliProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments], _workspace.Root, _workspace.PathTo("home"));

    /// <summary>Waits for a signalled process to exit; one that does not within the deadline is killed, and its stderr shown.</summary>
    private static async Task StoppedAsync(Process process, Task<string> stderr)
    {
        try
        {
            await process.WaitForExitAsync(new CancellationTokenSource(Deadline).Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new ShouldAssertException($"skiff did not stop within {Deadline.TotalSeconds:0} s of SIGTERM; its stderr:\n{await stderr}");
        }
    }

    private static async Task<string> ReadUntilAsync(Process process, Func<string, bool> wanted)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (await process.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
        {
            if (wanted(line))
            {
                return line;
            }
        }

        throw new InvalidOperationException($"the process ended before printing the expected line: {await process.StandardError.ReadToEndAsync()}");
    }

    private static void Signal(Process process, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }
}
