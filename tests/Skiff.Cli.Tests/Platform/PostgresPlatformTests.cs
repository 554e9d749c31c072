using System.Diagnostics;
using System.Text.Json.Nodes;
using Npgsql;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>`skiff server --metadata postgres://…` as a user starts it, against a real PostgreSQL.</summary>
[Collection(PostgresServer.Collection)]
public sealed class PostgresPlatformTests(PostgresServer postgres) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly Workspace _workspace = new();
    private readonly List<Process> _started = [];

    public void Dispose()
    {
        // A test that failed half way must not leave a server or an agent running.
        foreach (var process in _started)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }

            process.Dispose();
        }

        _workspace.Dispose();
    }

    [Fact]
    public async Task A_server_on_PostgreSQL_serves_a_deploy_and_a_run_and_a_restarted_server_still_has_their_history()
    {
        var database = new NpgsqlConnectionStringBuilder(await postgres.CreateDatabaseAsync()).Database!;
        var metadata = postgres.Url(database);
        var data = _workspace.PathTo("server");
        var hello = PlatformFixture.SharedHello;
        var (server, url) = await StartServerAsync(data, metadata);
        var token = File.ReadAllText(Path.Combine(data, "token")).Trim();
        var agent = Start("agent", "--server", url, "--token", token, "--cache", _workspace.PathTo("agent"), "--name", "worker-1");

        var deploy = await SkiffAsync("deploy", hello, "--location", "pg", "--server", url, "--token", token);
        var run = await SkiffAsync("run", "pg", "hello", "--server", url, "--token", token);
        var firstExit = await StopAsync(server);
        var (restarted, restartedUrl) = await StartServerAsync(data, metadata);
        var history = await SkiffAsync("history", "pg", "--json", "--server", restartedUrl, "--token", token);
        var runs = await SkiffAsync("runs", "pg", "--json", "--server", restartedUrl, "--token", token);
        var runId = (string?)JsonNode.Parse(runs.Stdout)?.AsArray().SingleOrDefault()?["run"] ?? "missing";
        var logs = await SkiffAsync("logs", runId, "--server", restartedUrl, "--token", token);
        await StopAsync(agent);
        var restartedExit = await StopAsync(restarted);

        deploy.ExitCode.ShouldBe(0, deploy.ToString());
        (firstExit, restartedExit).ShouldBe((0, 0));
        run.ExitCode.ShouldBe(0, run.ToString());
        history.ExitCode.ShouldBe(0, history.ToString());
        ((string?)JsonNode.Parse(history.Stdout)!.AsArray().ShouldHaveSingleItem()!["outcome"]).ShouldBe("live");
        runs.ExitCode.ShouldBe(0, runs.ToString());
        ((string?)JsonNode.Parse(runs.Stdout)!.AsArray().Single()!["status"]).ShouldBe("succeeded");
        logs.ExitCode.ShouldBe(0, logs.ToString());
        logs.Stdout.ShouldContain("Hello, world!");
        File.Exists(Path.Combine(data, "skiff.db")).ShouldBeFalse("metadata went to SQLite, not PostgreSQL");
        await using var connection = new NpgsqlConnection(postgres.ConnectionString(database));
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM run_events;", connection);
        ((long)(await count.ExecuteScalarAsync())!).ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task A_metadata_value_that_is_no_database_is_a_usage_error_and_one_that_cannot_be_reached_is_one_line()
    {
        var data = _workspace.PathTo("bad");

        var notADatabase = await SkiffAsync("server", "--data", data, "--port", "0", "--metadata", "metadata.db");
        var unreachable = await SkiffAsync("server", "--data", data, "--port", "0", "--metadata", "postgres://skiff:hunter2@127.0.0.1:1/skiff");

        notADatabase.ExitCode.ShouldBe(2, notADatabase.ToString());
        notADatabase.Stderr.Trim().Split('\n').ShouldHaveSingleItem().ShouldStartWith("error: --metadata: the PostgreSQL metadata database setting is not understood");
        unreachable.ExitCode.ShouldBe(1, unreachable.ToString());
        unreachable.Stderr.Trim().Split('\n').ShouldHaveSingleItem().ShouldStartWith("error: the metadata database postgresql://skiff@127.0.0.1:1/skiff cannot be reached");
        unreachable.Stderr.ShouldNotContain("hunter2");
        unreachable.Stdout.ShouldBeEmpty();
    }

    private async Task<(Process Server, string Url)> StartServerAsync(string data, string metadata)
    {
        var server = Start("server", "--data", data, "--port", "0", "--metadata", metadata);
        using var deadline = new CancellationTokenSource(Deadline);
        while (await server.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
        {
            if (line.StartsWith("skiff server listening on ", StringComparison.Ordinal))
            {
                return (server, line.Split(' ')[4]);
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
        var process = Process.Start(startInfo)!;
        _started.Add(process);
        return process;
    }

    private Task<CliProcess.Result> SkiffAsync(params string[] arguments) =>
        CliProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), .. arguments], _workspace.Root, _workspace.PathTo("home"));

    /// <summary>SIGTERM, as a service manager stops it; waits for it to exit and returns its exit code.</summary>
    private static async Task<int> StopAsync(Process process)
    {
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!)
        {
            await kill.WaitForExitAsync();
        }

        using var deadline = new CancellationTokenSource(Deadline);
        await process.WaitForExitAsync(deadline.Token);
        return process.ExitCode;
    }
}
