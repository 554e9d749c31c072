using System.Diagnostics;
using System.Text.Json.Nodes;
using Skiff.Server.Hosting;
using Skiff.Server.Metadata;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>A client following a run while its server is killed: one clear line, no stack trace.</summary>
public sealed class FollowServerGoneTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Following_a_run_when_the_server_is_killed_ends_with_one_line_that_says_so()
    {
        // A running run with one event, recorded as a server records it; its agent is elsewhere and goes on.
        var data = _workspace.PathTo("server");
        var release = new ReleaseRecord(Digest("r"), Digest("e"), Digest("s"), "App.dll", null, DateTimeOffset.UtcNow);
        await using (var store = await MetadataStores.OpenAsync(new ServerOptions { DataDirectory = data }, TimeProvider.System, CancellationToken.None))
        {
            await store.RegisterReleaseAsync(release, CancellationToken.None);
            await store.CreateDeploymentAsync(
                new DeploymentRecord("d-1", "app", release.Id, release.Environment, release.Source, DeploymentPaths.Full, 0, 0, new Dictionary<string, long>(), "test",
                    DateTimeOffset.UtcNow, DeploymentOutcomes.Pending, null, null, null, null),
                CancellationToken.None);
            await store.CompleteDeploymentAsync("d-1", DeploymentOutcomes.Live, null, "[]", null, new Dictionary<string, long>(), CancellationToken.None);
            await store.CreateRunAsync(new RunRecord("r-1", "app", release.Id, "hold", "{}", RunStatuses.Running, DateTimeOffset.UtcNow, null, null, "agent-1"), CancellationToken.None);
            await store.AppendRunEventAsync("r-1", 1, """{"seq":1,"type":"run_started","run":"r-1"}""", CancellationToken.None);
        }

        using var server = Start("server", "--data", data, "--port", "0", "--json");
        var ready = JsonNode.Parse(await ReadLineAsync(server))!;
        using var logs = Start("logs", "r-1", "--follow", "--json", "--server", (string)ready["url"]!, "--token", (await File.ReadAllTextAsync(Path.Combine(data, "token"))).Trim());
        var logsErrors = logs.StandardError.ReadToEndAsync();
        try
        {
            // The first event printed: it is following.
            (await ReadLineAsync(logs)).ShouldContain("run_started");

            server.Kill();
            await logs.WaitForExitAsync(new CancellationTokenSource(Deadline).Token);
        }
        finally
        {
            server.Kill();
            logs.Kill();
        }

        var stderr = await logsErrors;
        logs.ExitCode.ShouldBe(1, stderr);
        var line = stderr.Trim().Split('\n').ShouldHaveSingleItem();
        line.ShouldStartWith($"error: lost the connection to the Skiff server at {(string)ready["url"]!}/ while following run r-1 (");
        line.ShouldEndWith("the run goes on if its agent is still up (the agent of `skiff up` stops with it, and the run is failed once it is back). Follow it again with `skiff logs r-1 --follow` once the server is back.");
    }

    private static Skiff.Core.Digest Digest(string seed) => Skiff.Core.Digest.Compute(System.Text.Encoding.UTF8.GetBytes(seed));

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

    private static async Task<string> ReadLineAsync(Process process)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        return await process.StandardOutput.ReadLineAsync(deadline.Token)
            ?? throw new InvalidOperationException($"the process ended before printing a line: {await process.StandardError.ReadToEndAsync()}");
    }
}
