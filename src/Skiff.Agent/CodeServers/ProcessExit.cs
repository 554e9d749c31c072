namespace Skiff.Agent.CodeServers;

/// <summary>How a code-server process ended, in words a person can act on.</summary>
internal sealed record ProcessExit(int ExitCode, IReadOnlyList<string> StderrTail)
{
    /// <summary>"exited with code 1", "was killed by SIGABRT (exit code 134)".</summary>
    /// <summary>The kernel stopped it for going over its cgroup memory limit.</summary>
    public bool OutOfMemory { get; init; }

    public string Describe()
    {
        var how = ExitCode > 128 && ExitCode < 128 + 32
            ? $"was killed by {SignalName(ExitCode - 128)} (exit code {ExitCode})"
            : $"exited with code {ExitCode}";
        how = OutOfMemory ? how + ": Out of memory, it went over its memory limit (native memory included)" : how;
        return StderrTail.Count == 0 ? how : $"{how}; the end of its stderr:\n{string.Join('\n', StderrTail)}";
    }

    private static string SignalName(int signal) => signal switch
    {
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => $"signal {signal}",
    };
}
