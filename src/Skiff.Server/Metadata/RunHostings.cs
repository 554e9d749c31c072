namespace Skiff.Server.Metadata;

/// <summary>
/// Where a location's runs execute (`--runs`, docs/agent.md "Shared run host"), as stored and as sent to agents: a process
/// each, or all runs of a release in its shared run host.
/// </summary>
internal static class RunHostings
{
    public const string Isolated = "isolated";
    public const string Shared = "shared";

    public static IReadOnlyList<string> Names { get; } = [Isolated, Shared];

    /// <exception cref="ArgumentException"><paramref name="runs"/> is not one of <see cref="Names"/>.</exception>
    public static void Check(string runs)
    {
        if (!Names.Contains(runs, StringComparer.Ordinal))
        {
            throw new ArgumentException($"'{runs}' is not a way to run runs; give {Isolated} (a process each) or {Shared} (one shared run host per release).", nameof(runs));
        }
    }
}
