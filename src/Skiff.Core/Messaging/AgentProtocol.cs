namespace Skiff.Core.Messaging;

/// <summary>
/// The version of the agent protocol (docs/agent-protocol.md), checked when an agent connects: the agent names the
/// version it speaks in the connect URL, and a server that does not speak it refuses the connection with
/// <see cref="RefusedStatus"/> and a message saying which side to upgrade, before any message is exchanged.
/// </summary>
internal static class AgentProtocol
{
    /// <summary>
    /// Raise this whenever a message changes shape in a way the other side's previous release cannot read. 2: the
    /// fleet (an agent's first message is its hello, which the server waits for before it catches the agent up). 3: an
    /// agent sends a run's events in batches (<see cref="AgentRunEvents"/>) instead of one message each. 4: a pool's
    /// agent keeps a finished task's outcome until the server answers <see cref="AgentTaskRecorded"/> (<see cref="RecordsTasks"/>).
    /// </summary>
    public const int Version = 4;

    /// <summary>
    /// The first version whose agents keep a finished task's outcome until the server says it recorded it, and resend it
    /// after a reconnect. Versions are checked so a server of an older release, which never says so, refuses such an
    /// agent (it would keep every outcome it ever sent), and this server sends the answer only to agents that read it.
    /// </summary>
    public const int RecordsTasks = 4;

    /// <summary>The connect URL's query parameter that carries the agent's version. Agents from before the check send none: they speak 1.</summary>
    public const string QueryParameter = "protocol";

    /// <summary>426 Upgrade Required: the one answer that means "this protocol version, not this request, is the problem".</summary>
    public const int RefusedStatus = 426;

    /// <summary>
    /// The refusal's message, also in this response header: a WebSocket client sees the status and headers of a refused
    /// handshake but not its body.
    /// </summary>
    public const string RefusalHeader = "Skiff-Refusal";

    /// <summary>
    /// The versions a server of this release serves. 2 and 3 still, so servers can be upgraded before their agents: a
    /// version-2 agent differs only in sending each event on its own (<see cref="AgentRunEvent"/>), which this server
    /// reads too, and a version-3 agent only in not keeping task outcomes, to which this server then sends no
    /// <see cref="AgentTaskRecorded"/>.
    /// </summary>
    public static readonly IReadOnlyList<int> Served = [2, 3, Version];

    /// <summary>The version an agent asked for, once <see cref="Refusal"/> found none to refuse (none given: 1).</summary>
    public static int Requested(string? requested) =>
        requested is null ? 1 : int.Parse(requested, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture);

    public static string SkiffVersion { get; } = typeof(AgentProtocol).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>Why a server of this release refuses an agent that asked for <paramref name="requested"/>; null when it serves it.</summary>
    public static string? Refusal(string agent, string? requested)
    {
        if (requested is null)
        {
            return Served.Contains(1) ? null : Refusal(agent, "1");
        }

        if (!int.TryParse(requested, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version))
        {
            return $"agent '{agent}' asked for agent protocol '{requested}', which is not a version number; this server (skiff {SkiffVersion}) speaks agent protocol {Versions()}.";
        }

        if (Served.Contains(version))
        {
            return null;
        }

        var advice = version > Served.Max()
            ? $"upgrade the server to a skiff release that speaks protocol {version}, or run the agent from the server's release (skiff {SkiffVersion})"
            : $"upgrade the agent to the server's release (skiff {SkiffVersion})";
        return $"agent '{agent}' speaks agent protocol {version}; this server (skiff {SkiffVersion}) speaks agent protocol {Versions()} only: {advice}.";
    }

    private static string Versions() => $"{string.Join(", ", Served.SkipLast(1))} or {Served[^1]}";
}
