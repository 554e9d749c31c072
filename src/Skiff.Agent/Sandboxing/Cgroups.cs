using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Skiff.Agent.Sandboxing;

/// <summary>
/// Limits by cgroup v1: a group per location in the <c>cpu</c> (quota) and <c>pids</c> (process count) hierarchies,
/// and a group per process in the <c>memory</c> hierarchy (the location's memory limit is each process's, as the
/// managed-heap limit always was). All of them live under one group of this agent, beside the agent's own group,
/// so nothing else on the machine is touched.
/// </summary>
/// <remarks>
/// cgroup v2 is used by nothing here yet: on this kind of machine it is mounted without controllers, while v1
/// <c>memory</c>, <c>cpu</c> and <c>pids</c> are mounted and writable (a 100 MiB limit OOM-kills a process that
/// allocates 300 MiB). Where no v1 hierarchy is writable the agent says so and the managed-heap limit remains.
/// </remarks>
internal sealed class Cgroups : IDisposable
{
    private const string Mount = "/sys/fs/cgroup";
    private static readonly string[] Controllers = ["memory", "cpu", "pids"];

    private readonly Dictionary<string, string> _roots;
    private long _next;

    private Cgroups(Dictionary<string, string> roots) => _roots = roots;

    /// <summary>This agent's groups (one per hierarchy); null, with the reason, when no hierarchy can be written.</summary>
    public static Cgroups? TryCreate(string agentKey, out string reason)
    {
        var roots = new Dictionary<string, string>(StringComparer.Ordinal);
        var problems = new List<string>();
        var own = ReadOwnGroups();
        foreach (var controller in Controllers)
        {
            var hierarchy = Path.Combine(Mount, controller);
            if (!own.TryGetValue(controller, out var path) || !Directory.Exists(hierarchy))
            {
                problems.Add($"no cgroup v1 {controller} hierarchy is mounted");
                continue;
            }

            var root = Path.Combine(hierarchy + path, "skiff-" + Key(agentKey));
            try
            {
                RemoveEmpty(root);
                Directory.CreateDirectory(root);
                roots[controller] = root;
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                problems.Add($"the cgroup v1 {controller} hierarchy is not writable ({exception.Message})");
            }
        }

        reason = string.Join("; ", problems);
        if (roots.Count == Controllers.Length)
        {
            return new Cgroups(roots);
        }

        foreach (var root in roots.Values)
        {
            RemoveEmpty(root);
        }

        return null;
    }

    /// <summary>
    /// The groups one process of <paramref name="location"/> joins: the location's CPU and process-count groups,
    /// and a memory group of its own when <paramref name="memoryBytes"/> is set. Returns their <c>cgroup.procs</c>
    /// files, for the process to write itself into before it starts (so nothing it forks escapes), and the memory
    /// group, to read whether the kernel stopped it for memory.
    /// </summary>
    public (IReadOnlyList<string> Procs, string? MemoryGroup) Join(string location, long? memoryBytes, double? cpus, int pids)
    {
        var name = Key(location);
        var cpu = Path.Combine(_roots["cpu"], name);
        Directory.CreateDirectory(cpu);
        Write(cpu, "cpu.cfs_period_us", "100000");
        Write(cpu, "cpu.cfs_quota_us", cpus is { } c ? ((long)(c * 100000)).ToString(CultureInfo.InvariantCulture) : "-1");
        var count = Path.Combine(_roots["pids"], name);
        Directory.CreateDirectory(count);
        Write(count, "pids.max", pids.ToString(CultureInfo.InvariantCulture));
        List<string> procs = [Path.Combine(cpu, "cgroup.procs"), Path.Combine(count, "cgroup.procs")];
        string? memory = null;
        if (memoryBytes is { } bytes)
        {
            memory = Path.Combine(_roots["memory"], name, Interlocked.Increment(ref _next).ToString(CultureInfo.InvariantCulture));
            Directory.CreateDirectory(memory);
            var limit = bytes.ToString(CultureInfo.InvariantCulture);
            Write(memory, "memory.limit_in_bytes", limit);
            // With swap accounting, swap counts too; without it (no swap here) there is nothing to bound.
            if (File.Exists(Path.Combine(memory, "memory.memsw.limit_in_bytes")))
            {
                Write(memory, "memory.memsw.limit_in_bytes", limit);
            }

            procs.Add(Path.Combine(memory, "cgroup.procs"));
        }

        return (procs, memory);
    }

    /// <summary>
    /// How often the kernel held <paramref name="location"/>'s processes back for its CPU quota: the CFS periods they
    /// ran in and the ones in which they used up the quota (<c>cpu.stat</c>). Zeros before the location's first process.
    /// </summary>
    public (long Periods, long Throttled) CpuThrottling(string location)
    {
        long periods = 0, throttled = 0;
        try
        {
            foreach (var line in File.ReadLines(Path.Combine(_roots["cpu"], Key(location), "cpu.stat")))
            {
                var parts = line.Split(' ');
                if (parts.Length == 2 && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var value))
                {
                    (periods, throttled) = parts[0] switch
                    {
                        "nr_periods" => (value, throttled),
                        "nr_throttled" => (periods, value),
                        _ => (periods, throttled),
                    };
                }
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
        }

        return (periods, throttled);
    }

    /// <summary>Whether the kernel's OOM killer stopped a process of this memory group.</summary>
    public static bool OutOfMemory(string memoryGroup)
    {
        try
        {
            return File.ReadLines(Path.Combine(memoryGroup, "memory.oom_control"))
                .Any(line => line.StartsWith("oom_kill ", StringComparison.Ordinal) && line != "oom_kill 0");
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Removes a process's group once its processes are gone; one still busy is left for <see cref="Dispose"/> or the next start.</summary>
    public static void Leave(string? memoryGroup)
    {
        if (memoryGroup is null)
        {
            return;
        }

        try
        {
            Directory.Delete(memoryGroup);
        }
        catch (IOException)
        {
        }
    }

    public void Dispose()
    {
        // The agent has stopped its processes, but the kernel may still be taking the last of them out of their
        // groups (a killed sandbox's namespace goes down asynchronously): give it a moment before leaving any behind.
        var deadline = Environment.TickCount64 + 2000;
        while (true)
        {
            foreach (var root in _roots.Values)
            {
                RemoveEmpty(root);
            }

            if (!_roots.Values.Any(Directory.Exists) || Environment.TickCount64 > deadline)
            {
                return;
            }

            Thread.Sleep(20);
        }
    }

    private static void Write(string group, string file, string value) => File.WriteAllText(Path.Combine(group, file), value);

    /// <summary>Removes a tree of groups bottom up (cgroup folders are removed with rmdir, not by deleting files); busy ones stay.</summary>
    private static void RemoveEmpty(string group)
    {
        if (!Directory.Exists(group))
        {
            return;
        }

        foreach (var child in Directory.GetDirectories(group))
        {
            RemoveEmpty(child);
        }

        try
        {
            Directory.Delete(group);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>controller → this process's group path, from /proc/self/cgroup ("4:memory:/a/b", "1:cpu,cpuacct:/").</summary>
    private static Dictionary<string, string> ReadOwnGroups()
    {
        var groups = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines("/proc/self/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length == 3)
            {
                foreach (var controller in parts[1].Split(','))
                {
                    groups[controller] = parts[2];
                }
            }
        }

        return groups;
    }

    /// <summary>A name fit for a cgroup folder, the same for the same text.</summary>
    private static string Key(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
}
