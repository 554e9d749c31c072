using Skiff.Testing;
using System.Diagnostics;
using Skiff.Agent;
using Skiff.Agent.Locations;
using Skiff.Build.Releases;
using Skiff.Core.Blobs;

namespace Skiff.Bench;

/// <summary>
/// Agent-side activation of samples/Hello after a one-line change, environment already cached
/// (activation requested → definitions reported), with its stage breakdown; then the agent's own memory
/// with twenty locations live.
/// </summary>
internal static class ActivationBenchmark
{
    public static async Task<int> RunAsync(int iterations)
    {
        using var workspace = new Workspace();
        var root = workspace.Root;
        var project = workspace.CopySample("Hello", "repo");
        var store = new FileBlobStore(Path.Combine(root, "store"));
        var builder = new ReleaseBuilder(store);
        // Two agents side by side on the same releases: one starts every version cold, one in a standby process.
        await using var cold = new AgentHost(new AgentOptions { CacheDirectory = Path.Combine(root, "agent-cold"), Standbys = 0 }, store, TimeProvider.System);
        await using var agent = new AgentHost(new AgentOptions { CacheDirectory = Path.Combine(root, "agent") }, store, TimeProvider.System);
        // And one as `skiff agent` runs by default: sandboxed (bubblewrap, a user per location), so every start is cold.
        AgentHost? sandboxed = null;
        try
        {
            sandboxed = new AgentHost(new AgentOptions { CacheDirectory = Path.Combine(root, "agent-sandboxed"), Sandbox = true }, store, TimeProvider.System);
        }
        catch (Skiff.Agent.Sandboxing.SandboxUnavailableException exception)
        {
            Console.WriteLine($"(no sandboxed agent in this run: {exception.Message})");
        }

        await using var disposeSandboxed = sandboxed;
        List<(string Name, AgentHost Host)> hosts = [("cold", cold), ("standby", agent), .. sandboxed is null ? [] : new[] { ("sandboxed", sandboxed) }];
        try
        {
            var first = await builder.BuildAsync(new BuildRequest(project), null, CancellationToken.None);
            foreach (var (_, host) in hosts)
            {
                Check(await host.ActivateAsync("bench", first.Release, null, CancellationToken.None));
            }

            var stages = new Dictionary<string, List<double>>();
            for (var i = 0; i < iterations + 2; i++)
            {
                await File.AppendAllTextAsync(Path.Combine(project, "Program.cs"), $"\n// change {i}\n");
                var release = (await builder.BuildAsync(new BuildRequest(project), null, CancellationToken.None)).Release;
                foreach (var (name, host) in hosts)
                {
                    // A save comes seconds apart, not milliseconds: what the last swap set going has finished.
                    await host.StandbysStartedAsync();
                    var result = Check(await host.ActivateAsync("bench", release, null, CancellationToken.None));
                    if (i < 2)
                    {
                        continue; // warm-up
                    }

                    Stats.Add(stages, $"{name}: fetch (source blob into the agent cache)", result.Timings.Fetch.TotalMilliseconds);
                    Stats.Add(stages, $"{name}: materialize (unpack the source)", result.Timings.Materialize.TotalMilliseconds);
                    Stats.Add(stages, $"{name}: process start (→ hello)", result.Timings.ProcessStart.TotalMilliseconds);
                    Stats.Add(stages, $"{name}: ready (→ definitions listed)", result.Timings.Ready.TotalMilliseconds);
                    Stats.Add(stages, $"{name}: activation total", result.Timings.Total.TotalMilliseconds);
                }
            }

            if (agent.StandbysTaken < iterations)
            {
                throw new InvalidOperationException($"only {agent.StandbysTaken} of {iterations + 2} activations started in a standby");
            }

            Console.WriteLine($"agent activation of samples/Hello after a one-line change, environment cached, {iterations} activations, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}");
            Console.WriteLine();
            Console.WriteLine(Stats.Header);
            foreach (var (stage, values) in stages)
            {
                Console.WriteLine(Stats.Row(stage, values));
            }

            Console.WriteLine();
            Console.WriteLine($"standby / cold, activation total p50: {Stats.Percentile(stages["standby: activation total"], 0.5) / Stats.Percentile(stages["cold: activation total"], 0.5):0.00}");
            if (sandboxed is not null)
            {
                Console.WriteLine($"sandboxed / cold, activation total p50: {Stats.Percentile(stages["sandboxed: activation total"], 0.5) / Stats.Percentile(stages["cold: activation total"], 0.5):0.00}");
            }

            var current = agent.Describe("bench")!.Release;
            await Task.WhenAll(Enumerable.Range(0, 19).Select(i => agent.ActivateAsync($"bench-{i:D2}", current, null, CancellationToken.None)));
            GC.Collect();
            using var self = Process.GetCurrentProcess();
            var codeServers = agent.Locations.Sum(l => ResidentBytes(l.CodeServerProcessId));
            Console.WriteLine();
            Console.WriteLine($"with {agent.Locations.Count} locations live: agent process {self.WorkingSet64 / (1024 * 1024)} MiB resident ({GC.GetTotalMemory(false) / (1024 * 1024)} MiB managed heap); code servers {codeServers / (1024 * 1024)} MiB resident in all ({codeServers / agent.Locations.Count / (1024 * 1024)} MiB each)");
            return 0;
        }
        finally
        {
            await agent.DisposeAsync();
        }
    }

    private static ActivationResult Check(ActivationResult result) =>
        result.Succeeded ? result : throw new InvalidOperationException(result.Error);


    private static long ResidentBytes(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return process.WorkingSet64;
        }
        catch (ArgumentException)
        {
            return 0;
        }
    }
}
