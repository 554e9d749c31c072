using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Skiff.Agent;
using Skiff.Agent.CodeServers;
using Skiff.Agent.Locations;
using Skiff.Agent.Runs;
using Skiff.Build.Releases;
using Skiff.Core.Blobs;
using Skiff.Sdk.Protocol;
using Skiff.Testing;

namespace Skiff.Bench;

/// <summary>
/// Runs on a warm location, isolated (a process per run) against shared (one shared run host per release), side by side
/// on one agent: run starts per second, and the memory of each run that waits on a task call (the agent holds every call
/// until the end, as a busy pool would). Memory is the proportional set size (PSS) of this process and every process
/// under it, so pages the runs' processes share are counted once.
/// </summary>
internal static class RunHostBenchmark
{
    private const int Concurrency = 8;

    public static async Task<int> RunAsync(int iterations)
    {
        // --iterations scales the counts: 20 (the default) gives 10,000 shared waiting runs and 100 isolated ones.
        var sharedWaiting = iterations * 500;
        var isolatedWaiting = iterations * 5;
        var sharedStarts = iterations * 50;
        var isolatedStarts = iterations * 2;
        using var workspace = new Workspace();
        var project = workspace.CopySample("Hello", "repo");
        var program = Path.Combine(project, "Program.cs");
        await File.WriteAllTextAsync(program, (await File.ReadAllTextAsync(program)).Replace(
            """    jobs.Job("hello",""",
            """
                jobs.Job("noop", "Does nothing").Run(_ => Task.CompletedTask);
                jobs.Job("waits", "Waits on a task call").Run(async context => await context.CallAsync<int, int>("pool", "work", 1));
                jobs.Job("hello",
            """,
            StringComparison.Ordinal));
        var store = new FileBlobStore(Path.Combine(workspace.Root, "store"));
        var release = (await new ReleaseBuilder(store).BuildAsync(new BuildRequest(project), null, CancellationToken.None)).Release;
        // The default bound of 1,024 processes and threads per location (pids.max, where cgroups are writable) would stop
        // isolated runs at about 50 (a .NET process has about 20 threads): lifted, so memory is what is measured. No
        // standbys: with eight runs starting at once, 30 idle standby processes were seen beside 21 run workers (2026-11-29),
        // which would count in the isolated memory; every isolated run starts cold here, the shared host once either way.
        await using var agent = new AgentHost(new AgentOptions { CacheDirectory = Path.Combine(workspace.Root, "agent"), LocationProcesses = 1 << 20, Standbys = 0 }, store, TimeProvider.System);
        var held = new List<(string Call, TaskCompletionSource<TaskResultNotice> Answer)>();
        agent.TaskCalls = (call, _, cancellationToken) =>
        {
            var answer = new TaskCompletionSource<TaskResultNotice>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (held)
            {
                held.Add((call.Call, answer));
            }

            return answer.Task.WaitAsync(cancellationToken);
        };
        Check(await agent.ActivateAsync("isolated", release, null, CancellationToken.None));
        Check(await agent.ActivateAsync("shared", release, new LocationSettings { Runs = RunHosting.Shared }, CancellationToken.None));
        // Warm: the shared host is up, standbys are ready.
        await EndAsync(await agent.StartRunAsync("shared", "noop", null, null, CancellationToken.None));
        await EndAsync(await agent.StartRunAsync("isolated", "noop", null, null, CancellationToken.None));
        await agent.StandbysStartedAsync();

        var rows = new List<string>();
        foreach (var (location, count) in new[] { ("isolated", isolatedStarts), ("shared", sharedStarts) })
        {
            var perSecond = await StartsPerSecondAsync(agent, location, count);
            Console.Error.WriteLine($"{location}: {perSecond:0.0} run starts/s");
            rows.Add(string.Create(CultureInfo.InvariantCulture, $"| {location,-8} | run starts per second ({count} runs of a job that does nothing, {Concurrency} starting at once) | {perSecond,10:0.0} |"));
        }

        foreach (var (location, count) in new[] { ("isolated", isolatedWaiting), ("shared", sharedWaiting) })
        {
            // The previous phase's run workers gone (each is forgotten once its process has exited), so they are not counted.
            while (agent.RunningRuns > 0)
            {
                await Task.Delay(100);
            }

            GC.Collect();
            var before = TreePssBytes();
            var runs = new List<RunHandle>();
            for (var i = 0; i < count; i++)
            {
                runs.Add(await agent.StartRunAsync(location, "waits", null, null, CancellationToken.None));
                if ((i + 1) % 1000 == 0)
                {
                    Console.Error.WriteLine($"{location}: {i + 1} waiting");
                }
            }

            await WaitForCallsAsync(held, count);
            GC.Collect();
            var after = TreePssBytes();
            var threads = Process.GetCurrentProcess().Threads.Count;
            lock (held)
            {
                foreach (var (call, answer) in held)
                {
                    answer.TrySetResult(new TaskResultNotice(call, new TaskOutcome(true, JsonValue.Create(2))));
                }

                held.Clear();
            }

            var failed = 0;
            foreach (var run in runs)
            {
                failed += (string?)(await run.Completion)["type"] == "run_succeeded" ? 0 : 1;
            }

            if (failed > 0)
            {
                throw new InvalidOperationException($"{failed} of {count} waiting runs on '{location}' did not succeed");
            }

            rows.Add(string.Create(CultureInfo.InvariantCulture, $"| {location,-8} | memory per run waiting on a task call ({count} waiting; PSS of the agent and its processes, +{(after - before) / 1048576.0:0} MiB) | {(after - before) / 1048576.0 / count,7:0.00} MiB |"));
            rows.Add(string.Create(CultureInfo.InvariantCulture, $"| {location,-8} | shared run host processes up while they waited; threads of the agent's process | {agent.SharedRunHostProcessIds.Count} ; {threads} |"));
        }

        Console.WriteLine($"runs on a warm location of samples/Hello, isolated and shared side by side on one agent, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}");
        Console.WriteLine();
        Console.WriteLine("| runs     | measure | value |");
        Console.WriteLine("|----------|---------|------:|");
        rows.ForEach(Console.WriteLine);
        return 0;
    }

    private static async Task<double> StartsPerSecondAsync(AgentHost agent, string location, int count)
    {
        var next = 0;
        var ends = new List<Task>();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) <= count)
            {
                var run = await agent.StartRunAsync(location, "noop", null, null, CancellationToken.None);
                lock (ends)
                {
                    ends.Add(EndAsync(run));
                }
            }
        }));
        var perSecond = count / clock.Elapsed.TotalSeconds;
        await Task.WhenAll(ends);
        return perSecond;
    }

    private static async Task EndAsync(RunHandle run)
    {
        var end = await run.Completion;
        if ((string?)end["type"] != "run_succeeded")
        {
            throw new InvalidOperationException($"run {run.RunId} ended {end.ToJsonString()}");
        }
    }

    /// <summary>Until every waiting run has made its call: then each is parked in its await, which is what is measured.</summary>
    private static async Task WaitForCallsAsync(List<(string Call, TaskCompletionSource<TaskResultNotice> Answer)> held, int count)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            lock (held)
            {
                if (held.Count >= count)
                {
                    return;
                }
            }

            if (deadline.Elapsed > TimeSpan.FromMinutes(10))
            {
                throw new TimeoutException($"only {held.Count} of {count} runs made their task call within 10 minutes");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>The PSS of this process and all its descendants, from /proc/PID/smaps_rollup.</summary>
    private static long TreePssBytes()
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }

            try
            {
                // "pid (comm) state ppid …": the command may hold spaces, so read after its closing parenthesis.
                var stat = File.ReadAllText(Path.Combine(directory, "stat"));
                var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                (children.TryGetValue(parent, out var list) ? list : children[parent] = []).Add(pid);
            }
            catch (IOException)
            {
                // It exited meanwhile.
            }
        }

        var total = 0L;
        var pending = new Stack<int>([Environment.ProcessId]);
        while (pending.TryPop(out var pid))
        {
            try
            {
                var pss = File.ReadLines($"/proc/{pid}/smaps_rollup").First(l => l.StartsWith("Pss:", StringComparison.Ordinal));
                total += long.Parse(pss.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                // Exited, or not ours to read.
            }

            foreach (var child in children.GetValueOrDefault(pid) ?? [])
            {
                pending.Push(child);
            }
        }

        return total;
    }

    private static ActivationResult Check(ActivationResult result) =>
        result.Succeeded ? result : throw new InvalidOperationException(result.Error);
}
