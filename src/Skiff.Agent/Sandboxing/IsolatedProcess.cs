using Skiff.Agent.CodeServers;

namespace Skiff.Agent.Sandboxing;

/// <summary>
/// One process of a location, isolated: its private scratch folder (removed afterwards) and its cgroups, and the
/// command that starts it inside them. Disposed once the process has exited.
/// </summary>
internal sealed class IsolatedProcess : IDisposable
{
    /// <summary>
    /// Joins the cgroups named by the first arguments, then becomes the rest: the process is in its groups before
    /// it (or anything it forks) runs, which writing its PID from the agent after the start could not promise.
    /// </summary>
    private const string JoinGroups = """n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ >"$1" || exit 125; shift; n=$((n-1)); done; exec "$@" """;

    private readonly LocationIsolation _location;
    private readonly string _socketDirectory;
    private readonly IReadOnlyList<string> _procs = [];
    private readonly string? _memoryGroup;
    private readonly string? _scratch;
    private int _disposed;

    public IsolatedProcess(LocationIsolation location, string socketDirectory)
    {
        _location = location;
        _socketDirectory = socketDirectory;
        var agent = location.Agent;
        try
        {
            if (agent.Cgroups is { } cgroups)
            {
                (_procs, _memoryGroup) = cgroups.Join(location.Location, location.Memory?.Bytes, agent.Cpus, agent.Processes);
            }

            if (agent.Sandboxed)
            {
                _scratch = agent.NewScratch();
                Directory.CreateDirectory(_scratch);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(_scratch, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }

                Native.Chown(_scratch, location.Uid, location.Uid);
                Native.Chown(socketDirectory, location.Uid, location.Uid);
                foreach (var socket in Directory.EnumerateFileSystemEntries(socketDirectory))
                {
                    Native.Chown(socket, location.Uid, location.Uid);
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The process's writable folder (its working directory and HOME); null without a sandbox.</summary>
    public string? Scratch => _scratch;

    /// <summary>Whether the kernel stopped the process for going over its memory limit. Read it after the process has exited.</summary>
    public bool OutOfMemory => _memoryGroup is not null && Cgroups.OutOfMemory(_memoryGroup);

    /// <summary>The command that starts <paramref name="fileName"/> with <paramref name="arguments"/> inside this isolation.</summary>
    public SpawnCommand Wrap(string fileName, IReadOnlyList<string> arguments, string workingDirectory, IEnumerable<KeyValuePair<string, string>> environment)
    {
        var agent = _location.Agent;
        List<string> command = [fileName, .. arguments];
        var inherit = true;
        if (agent.Tools is { } tools)
        {
            var sandbox = tools.BaseArguments();
            var made = new HashSet<string>(StringComparer.Ordinal);
            ProcessIsolation.SandboxTools.AddReadOnly(sandbox, _location.ReadOnly, made);
            ProcessIsolation.SandboxTools.MakeParents(sandbox, _socketDirectory, made);
            ProcessIsolation.SandboxTools.MakeParents(sandbox, _scratch!, made);
            sandbox.AddRange(["--bind", _socketDirectory, _socketDirectory, "--bind", _scratch!, _scratch!, "--chdir", _scratch!]);
            command = [tools.Bwrap, .. sandbox, "--", .. tools.DropTo(_location.Uid), tools.DotnetRoot is not null && !Path.IsPathRooted(fileName) ? tools.Dotnet : fileName, .. arguments];
            // Nothing of the agent's environment (a token in SKIFF_TOKEN, S3 credentials) reaches the location.
            inherit = false;
            environment =
            [
                new("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
                new("HOME", _scratch!),
                new("TMPDIR", "/tmp"),
                new("SKIFF_SCRATCH", _scratch!),
                .. tools.DotnetRoot is { } root ? [new KeyValuePair<string, string>("DOTNET_ROOT", root)] : Array.Empty<KeyValuePair<string, string>>(),
                .. Environment.GetEnvironmentVariable("LANG") is { } lang ? [new KeyValuePair<string, string>("LANG", lang)] : Array.Empty<KeyValuePair<string, string>>(),
                .. environment,
            ];
            workingDirectory = _scratch!;
        }

        if (_procs.Count > 0)
        {
            command = ["/bin/sh", "-c", JoinGroups, "skiff-join", _procs.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), .. _procs, .. command];
        }

        return new SpawnCommand(command[0], command[1..], workingDirectory, environment, inherit);
    }

    /// <summary>
    /// Moves a process started before it knew its location (a standby, only without a sandbox) into the location's
    /// groups. It has forked nothing yet, and cgroup v1's <c>cgroup.procs</c> moves all of its threads.
    /// </summary>
    public void Adopt(int processId)
    {
        foreach (var procs in _procs)
        {
            File.WriteAllText(procs, processId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        Cgroups.Leave(_memoryGroup);
        if (_scratch is not null && Directory.Exists(_scratch))
        {
            try
            {
                Directory.Delete(_scratch, recursive: true);
            }
            catch (IOException)
            {
                // A process of the sandbox still writing; the next start of the agent removes what is left.
            }
        }
    }
}
