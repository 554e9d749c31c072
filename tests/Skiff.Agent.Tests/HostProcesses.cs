using System.Globalization;

namespace Skiff.Agent.Tests;

/// <summary>Processes as an operator of the agent's host sees them in /proc (what <c>ps</c>, <c>top</c> and <c>pgrep</c> read).</summary>
internal static class HostProcesses
{
    /// <summary>The process's name (its comm: <c>ps -e</c>'s CMD, <c>pgrep</c>'s match), that of its thread-group leader.</summary>
    public static string Name(int pid) => File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n');

    /// <summary>The process's parent.</summary>
    public static int Parent(int pid)
    {
        // "PID (COMM) STATE PPID …": the name may hold spaces and parentheses, so count from the last ')'.
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
    }

    /// <summary>The processes named <paramref name="name"/>, as <c>pgrep -x NAME</c> finds them.</summary>
    public static List<int> Named(string name) =>
        [.. Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && NameOrNull(pid) == name)];

    private static string? NameOrNull(int pid)
    {
        try
        {
            return Name(pid);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return null; // gone meanwhile
        }
    }
}
