using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// The `skiff` CLI, and agents as processes of their own, in one test's workspace: for tests that start `skiff up` or
/// `skiff server` themselves and agents beside it (AgentDrainTests, PoolScalingTests).
/// </summary>
internal sealed class SkiffProcesses(Workspace workspace)
{
    private static readonly TimeSpan Deadline = EmbeddedPlatform.ActivationDeadline;

    public static string Skiff => Path.Combine(AppContext.BaseDirectory, "skiff.dll");

    /// <summary>The CLI's home (its store, its config), in the workspace.</summary>
    public Dictionary<string, string> Home => new() { ["SKIFF_HOME"] = workspace.PathTo("home") };

    /// <summary>Runs one CLI command to its end.</summary>
    public Task<CliProcess.Result> RunAsync(Dictionary<string, string> environment, params string[] arguments) =>
        CliProcess.RunAsync("dotnet", [Skiff, .. arguments], workspace.Root, workspace.PathTo("home"), environment);

    /// <summary>Starts `skiff agent` named <paramref name="name"/> with a label, unsandboxed (so its code sees the test's folders), its cache its own.</summary>
    public RunningProcess StartAgent(string url, string token, string name, string label) => RunningProcess.Start(
        "dotnet",
        [Skiff, "agent", "--server", url, "--token", token, "--cache", workspace.PathTo(name + "-cache"), "--name", name, "--label", label, "--no-sandbox"],
        workspace.Root,
        Home);

    /// <summary>Waits until the server lists the agent as connected (it connects on its own, after its start).</summary>
    public async Task WaitForAgentAsync(Dictionary<string, string> environment, string name)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (true)
        {
            var agents = await RunAsync(environment, "agents", "--json");
            if (agents.ExitCode == 0 && JsonNode.Parse(agents.Stdout)!.AsArray().Any(a => (string?)a!["name"] == name && (bool?)a["connected"] == true))
            {
                return;
            }

            // Each look is a CLI process of its own; the deadline is against an agent that never connects.
            deadline.Token.ThrowIfCancellationRequested();
        }
    }
}
