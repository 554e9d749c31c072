namespace Skiff.Sdk;

/// <summary>What a schedule does about ticks that came due while no Skiff server was running to start them.</summary>
public enum MissedTicks
{
    /// <summary>Missed ticks are dropped; the schedule goes on with the next tick. The default.</summary>
    Skip,

    /// <summary>One run stands for every missed tick (started as soon as a server is back), then the schedule goes on.</summary>
    RunOnce,
}
