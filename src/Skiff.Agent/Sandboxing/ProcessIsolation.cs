using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Skiff.Core.Limits;
using Skiff.Core.Materialization;

namespace Skiff.Agent.Sandboxing;

/// <summary>
/// How an agent isolates the processes of its locations (docs/agent.md, "Isolation"): each in a bubblewrap sandbox
/// as a user of its location, and each bounded by cgroups. Decided once, when the agent starts: an agent asked to
/// sandbox that cannot refuses to start (<see cref="SandboxUnavailableException"/>); limits use cgroups where a
/// hierarchy is writable and fall back to the managed-heap limit where none is.
/// </summary>
internal sealed class ProcessIsolation : IDisposable
{
    /// <summary>Location users are numbered from here: far above any uid a distribution hands out, and no name in /etc/passwd is needed.</summary>
    private const int FirstUid = 1_000_000_000;
    private const int UidRange = 1 << 24;

    private static readonly string[] SystemFolders = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

    private readonly string _cacheDirectory;
    private readonly string _scratchRoot;
    private readonly Cgroups? _cgroups;
    private readonly double? _cpus;
    private readonly int _pids;
    private readonly Dictionary<string, int> _uids = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    private ProcessIsolation(AgentOptions options, SandboxTools? tools, Cgroups? cgroups, string? cgroupProblem)
    {
        _cacheDirectory = Path.GetFullPath(options.CacheDirectory);
        _scratchRoot = Path.Combine(_cacheDirectory, "scratch");
        Tools = tools;
        _cgroups = cgroups;
        _cpus = options.LocationCpus;
        _pids = options.LocationProcesses;
        Description = (tools is null ? "no sandbox (--no-sandbox): every location runs as the agent's user and sees its files" : "sandbox: bubblewrap, a user per location, read-only code, private scratch and /tmp")
            + "; " + (cgroups is null ? $"limits: managed heap only ({cgroupProblem})" : $"limits: cgroup v1 memory, cpu{(_cpus is { } c ? $" ({c:0.##} per location)" : "")}, pids ({_pids} per location)");
    }

    /// <summary>What a person should know about the isolation in force, in one line.</summary>
    public string Description { get; }

    public bool Sandboxed => Tools is not null;

    /// <summary>Whether memory limits bound the whole process (native memory too), not only the managed heap.</summary>
    public bool BoundsMemory => _cgroups is not null;

    internal SandboxTools? Tools { get; }

    internal string CacheDirectory => _cacheDirectory;

    internal Cgroups? Cgroups => _cgroups;

    internal double? Cpus => _cpus;

    internal int Processes => _pids;

    /// <exception cref="SandboxUnavailableException">A sandbox was asked for and cannot be had here.</exception>
    public static ProcessIsolation Create(AgentOptions options)
    {
        SandboxTools? tools = null;
        if (options.Sandbox)
        {
            tools = SandboxTools.Find(options.DotnetHost, out var problem) ?? throw new SandboxUnavailableException(problem);
        }

        var reason = "the agent does not run as root, so no cgroup is writable";
        var cgroups = Native.IsRoot ? Cgroups.TryCreate(Path.GetFullPath(options.CacheDirectory), out reason) : null;
        var isolation = new ProcessIsolation(options, tools, cgroups, reason);
        // Scratch folders of processes a killed agent left behind.
        if (Directory.Exists(isolation._scratchRoot))
        {
            Directory.Delete(isolation._scratchRoot, recursive: true);
        }

        return isolation;
    }

    /// <summary>How every process of <paramref name="location"/> running <paramref name="materialized"/> is to be isolated.</summary>
    public LocationIsolation For(string location, MaterializeOutcome materialized, MemoryLimit? memory)
    {
        var release = materialized.Release;
        IReadOnlyList<string> readOnly = [release.SourceDirectory, .. materialized.Packages.Select(p => Path.Combine(release.PackagesDirectory, p.Hex))];
        return new LocationIsolation(this, location, Sandboxed ? UidOf(location) : 0, readOnly, memory);
    }

    /// <summary>A new private scratch folder under the cache, for one process.</summary>
    internal string NewScratch() => Path.Combine(_scratchRoot, Guid.NewGuid().ToString("N")[..16]);

    public void Dispose() => _cgroups?.Dispose();

    /// <summary>
    /// The same uid for a location across restarts of this agent, and different uids for different locations of it
    /// (a collision moves on to the next free one), so one location's processes can never signal another's.
    /// </summary>
    private int UidOf(string location)
    {
        lock (_gate)
        {
            if (_uids.TryGetValue(location, out var uid))
            {
                return uid;
            }

            var hash = BitConverter.ToUInt32(SHA256.HashData(Encoding.UTF8.GetBytes(_cacheDirectory + "\0" + location)));
            var offset = (int)(hash % UidRange);
            while (_uids.ContainsValue(FirstUid + offset))
            {
                offset = (offset + 1) % UidRange;
            }

            _uids[location] = FirstUid + offset;
            return FirstUid + offset;
        }
    }

    /// <summary>bubblewrap, setpriv and the dotnet host, found and tried once.</summary>
    internal sealed record SandboxTools(string Bwrap, string Setpriv, string Dotnet, string? DotnetRoot)
    {
        public static SandboxTools? Find(string dotnetHost, out string problem)
        {
            problem = "";
            if (!Native.IsRoot)
            {
                problem = "the agent does not run as root, and only root can run a location's processes as a user of their own";
                return null;
            }

            var bwrap = OnPath("bwrap");
            var setpriv = OnPath("setpriv");
            var dotnet = Path.IsPathRooted(dotnetHost) ? dotnetHost : OnPath(dotnetHost);
            if (bwrap is null || setpriv is null || dotnet is null)
            {
                problem = bwrap is null ? "bwrap (Debian's bubblewrap) is not installed" : setpriv is null ? "setpriv (util-linux) is not installed" : $"the dotnet host '{dotnetHost}' was not found";
                return null;
            }

            // A dotnet outside /usr (say /root/.dotnet) is bound into the sandbox read-only on its own.
            var real = new FileInfo(dotnet).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? dotnet;
            var root = real.StartsWith("/usr/", StringComparison.Ordinal) ? null : Path.GetDirectoryName(real);
            var tools = new SandboxTools(bwrap, setpriv, root is null ? dotnet : real, root);
            return tools.Works(out problem) ? tools : null;
        }

        /// <summary>The arguments every sandbox starts with: the system read-only, fresh /proc, /dev and /tmp, nothing else.</summary>
        public List<string> BaseArguments()
        {
            List<string> arguments =
            [
                "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
            ];
            foreach (var folder in SystemFolders)
            {
                if (new FileInfo(folder).LinkTarget is { } target)
                {
                    arguments.AddRange(["--symlink", target, folder]);
                }
                else if (Directory.Exists(folder))
                {
                    arguments.AddRange(["--ro-bind", folder, folder]);
                }
            }

            arguments.AddRange(["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]);
            if (DotnetRoot is not null)
            {
                AddReadOnly(arguments, [DotnetRoot], []);
            }

            return arguments;
        }

        /// <summary>Read-only binds of <paramref name="paths"/> at the same paths, their parents made first so the location's user can pass through them.</summary>
        public static void AddReadOnly(List<string> arguments, IEnumerable<string> paths, HashSet<string> made)
        {
            foreach (var path in paths)
            {
                MakeParents(arguments, path, made);
                arguments.AddRange(["--ro-bind", path, path]);
            }
        }

        /// <summary>bubblewrap makes missing parents 0700 (root's alone); the location's user must pass through them.</summary>
        public static void MakeParents(List<string> arguments, string path, HashSet<string> made)
        {
            var parents = new Stack<string>();
            for (var parent = Path.GetDirectoryName(path); parent is not (null or "/" or "/tmp"); parent = Path.GetDirectoryName(parent))
            {
                parents.Push(parent);
            }

            foreach (var parent in parents.Where(made.Add))
            {
                arguments.AddRange(["--perms", "0755", "--dir", parent]);
            }
        }

        public List<string> DropTo(int uid) =>
            [Setpriv, "--reuid", uid.ToString(System.Globalization.CultureInfo.InvariantCulture), "--regid", uid.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"];

        /// <summary>Starts an empty sandbox as an unprivileged user: the kernel, bubblewrap and setpriv all cooperate, or the reason.</summary>
        private bool Works(out string problem)
        {
            var start = new ProcessStartInfo(Bwrap) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var argument in (List<string>)[.. BaseArguments(), "--", .. DropTo(FirstUid - 1), "/bin/true"])
            {
                start.ArgumentList.Add(argument);
            }

            using var probe = Process.Start(start)!;
            var error = probe.StandardError.ReadToEndAsync();
            if (!probe.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                probe.Kill(entireProcessTree: true);
                problem = "a test sandbox did not finish within 10 s";
                return false;
            }

            problem = probe.ExitCode == 0 ? "" : $"a test sandbox failed (bwrap exit code {probe.ExitCode}: {error.Result.Trim()})";
            return probe.ExitCode == 0;
        }

        private static string? OnPath(string program) =>
            (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
                .Split(':', StringSplitOptions.RemoveEmptyEntries)
                .Select(folder => Path.Combine(folder, program))
                .FirstOrDefault(File.Exists);
    }
}
