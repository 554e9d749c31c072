namespace Skiff.Server.Metadata;

/// <summary>What an agent said of itself, kept across its connections: the fleet's view of one host.</summary>
/// <param name="Name">The agent's name (<c>skiff agent --name</c>).</param>
/// <param name="Labels">Its labels (<c>--label zone=a</c>), which placement constraints match.</param>
/// <param name="CapacityJson">What it has to give (memory, CPUs, disk), as it reported when it connected.</param>
/// <param name="LoadJson">What it last reported using (memory, runs, locations, cached environments); null before its first report.</param>
/// <param name="Draining">Whether it is being drained: it gets no new locations or runs.</param>
/// <param name="SeenAt">When a server last heard from it (connect, load report or disconnect).</param>
internal sealed record AgentProfile(
    string Name,
    IReadOnlyDictionary<string, string> Labels,
    string CapacityJson,
    string? LoadJson,
    bool Draining,
    DateTimeOffset SeenAt);
