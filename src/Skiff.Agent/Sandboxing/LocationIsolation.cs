using Skiff.Core.Limits;

namespace Skiff.Agent.Sandboxing;

/// <summary>
/// How the processes of one location on one release are isolated: which user they run as, which folders they may
/// read, what bounds them. Carried by the location's launch; every process started from it gets its own
/// <see cref="IsolatedProcess"/> (scratch folder, memory group).
/// </summary>
internal sealed class LocationIsolation(ProcessIsolation agent, string location, int uid, IReadOnlyList<string> readOnly, MemoryLimit? memory)
{
    public string Location { get; } = location;

    /// <summary>The location's user; 0 when there is no sandbox (the processes run as the agent's user).</summary>
    public int Uid { get; } = uid;

    public ProcessIsolation Agent { get; } = agent;

    public IReadOnlyList<string> ReadOnly { get; } = readOnly;

    public MemoryLimit? Memory { get; } = memory;

    /// <summary>Sets up what one process of the location needs before it starts; disposing it cleans that up once the process is gone.</summary>
    /// <param name="socketDirectory">The private folder of the socket the process connects back on: given to the location's user and visible in its sandbox.</param>
    public IsolatedProcess Prepare(string socketDirectory) => new(this, socketDirectory);
}
