namespace Skiff.Agent.CodeServers;

/// <summary>
/// How to start a program that hands its Main to Skiff.Sdk: the command that runs it, to which the agent
/// appends <c>serve --connect SOCKET</c>.
/// </summary>
internal sealed record CodeServerLaunch(string FileName, IReadOnlyList<string> Arguments, string WorkingDirectory)
{
    /// <summary>Extra environment variables for the process.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>The same launch spelled out for a standby process; null when it must start cold.</summary>
    public StandbyShape? Standby { get; init; }

    /// <summary>How the process is isolated (sandbox, cgroups); null runs it as the agent's own child, unbounded.</summary>
    public Sandboxing.LocationIsolation? Isolation { get; init; }

    /// <summary>The agent's data folder, whose name the process's socket folder carries (<see cref="SocketFolders"/>); null for none.</summary>
    public string? AgentDataFolder { get; init; }

    /// <summary>A label for messages, such as the location and release.</summary>
    public string Name { get; init; } = "code server";

    /// <summary>
    /// What the process names itself (its comm: what <c>ps -e</c>, <c>top</c> and <c>pgrep</c> show), passed as
    /// <c>serve … --name NAME</c>; see <see cref="ProcessNames"/>. Null leaves it <c>dotnet</c>.
    /// </summary>
    public string? ProcessName { get; init; }

    /// <summary>What Main gets after the program's own arguments: serve the protocol on <paramref name="socketPath"/>, under <see cref="ProcessName"/>.</summary>
    public List<string> ServeArguments(string socketPath) =>
        ProcessName is { } name ? ["serve", "--connect", socketPath, "--name", name] : ["serve", "--connect", socketPath];
}
