namespace Skiff.Agent.Runs;

/// <summary>Where a location's runs execute (<c>--runs isolated|shared</c>, docs/agent.md "Shared run host").</summary>
internal enum RunHosting
{
    /// <summary>A process of its own per run: a run that crashes its process or runs out of memory hurts only itself.</summary>
    Isolated,

    /// <summary>
    /// Every run of one release in one process, the release's shared run host, as async state machines: a run costs no
    /// process start and holds no thread while it waits, but a crash of the host ends all of its runs.
    /// </summary>
    Shared,
}
