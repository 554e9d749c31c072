namespace Skiff.Agent.Connection;

/// <summary>
/// The servers an agent may connect to, all serving one platform (several <c>skiff server</c> processes on one
/// PostgreSQL), and the one it uses now. When that one fails, the agent moves on to the next, so it goes on
/// through another server when one dies.
/// </summary>
internal sealed class ServerList
{
    private int _current;

    public ServerList(IReadOnlyList<Uri> servers)
    {
        ArgumentNullException.ThrowIfNull(servers);
        ArgumentOutOfRangeException.ThrowIfZero(servers.Count, nameof(servers));
        All = servers;
    }

    public IReadOnlyList<Uri> All { get; }

    public Uri Current => All[(int)((uint)Volatile.Read(ref _current) % (uint)All.Count)];

    /// <summary>Moves on from <paramref name="failed"/>; does nothing if another caller already moved on from it.</summary>
    public void MoveOn(Uri failed)
    {
        var seen = Volatile.Read(ref _current);
        if (All[(int)((uint)seen % (uint)All.Count)] == failed)
        {
            Interlocked.CompareExchange(ref _current, seen + 1, seen);
        }
    }
}
