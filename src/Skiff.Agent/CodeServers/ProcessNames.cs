namespace Skiff.Agent.CodeServers;

/// <summary>
/// The names a location's processes give themselves (<see cref="CodeServerLaunch.ProcessName"/>), so that an operator
/// tells them apart with <c>ps -e</c>, <c>top</c> or <c>pgrep</c>, where every one of them is otherwise <c>dotnet</c>
/// (docs/agent.md, "Finding a location's processes").
/// </summary>
/// <remarks>
/// The kernel keeps 15 bytes of a process name: the role is a short prefix so that as much of the location as fits
/// follows it (<c>runs:analytics</c>, <c>cs:nightly-repor</c>). The SDK cuts the name there.
/// </remarks>
internal static class ProcessNames
{
    /// <summary>The code server of a location's live version.</summary>
    public static string CodeServer(string location) => "cs:" + location;

    /// <summary>The shared run host of a location: every run of one of its releases.</summary>
    public static string SharedRunHost(string location) => "runs:" + location;

    /// <summary>The process of one run of a location whose runs are isolated.</summary>
    public static string RunWorker(string location) => "run:" + location;
}
