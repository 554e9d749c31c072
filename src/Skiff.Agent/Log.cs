using Microsoft.Extensions.Logging;

namespace Skiff.Agent;

/// <summary>
/// Every log line the agent writes, source-generated. Event ids are stable (docs/logs.md); the agent's are the server's
/// areas plus 100: 31xx runs, 41xx the connection to the server, 42xx locations (activations, crashes, restarts).
/// </summary>
internal static partial class Log
{
    // 31xx: runs.

    [LoggerMessage(3100, LogLevel.Debug, "run {Run} of {Location}/{Job} started")]
    public static partial void RunStarted(ILogger logger, string run, string location, string job);

    // 41xx: the connection to the server.

    [LoggerMessage(4100, LogLevel.Information, "agent {Agent} connected to {Server}")]
    public static partial void Connected(ILogger logger, string agent, Uri server);

    [LoggerMessage(4101, LogLevel.Warning, "agent {Agent} lost its connection to {Server}; reconnecting")]
    public static partial void ConnectionLost(ILogger logger, string agent, Uri server);

    [LoggerMessage(EventId = 4102, Message = "agent {Agent} could not connect to {Server} ({Problem}); trying again in {Backoff}")]
    public static partial void ConnectFailed(ILogger logger, LogLevel level, string agent, Uri server, string problem, TimeSpan backoff);

    [LoggerMessage(4103, LogLevel.Error, "the connection of agent {Agent} to {Server} failed unexpectedly; reconnecting in {Backoff}")]
    public static partial void ConnectionFailed(ILogger logger, Exception exception, string agent, Uri server, TimeSpan backoff);

    [LoggerMessage(4104, LogLevel.Error, "a {Message} request from the server failed unexpectedly; the server was answered with the error")]
    public static partial void RequestFailed(ILogger logger, Exception exception, string message);

    [LoggerMessage(4105, LogLevel.Warning, "a {Message} request from the server failed: {Problem}")]
    public static partial void RequestRefused(ILogger logger, string message, string problem);

    [LoggerMessage(4106, LogLevel.Warning, "task call {Call} ended after the connection it came on dropped; its outcome is kept and sent again once connected, so the call is not run again")]
    public static partial void TaskAnswerKept(ILogger logger, string call);

    [LoggerMessage(4107, LogLevel.Information, "stopping: waiting for {Tasks} task(s) and {Runs} run(s) this agent holds to end; it takes no new work")]
    public static partial void Draining(ILogger logger, int tasks, int runs);

    [LoggerMessage(4108, LogLevel.Warning, "stopping: the drain grace of {Grace} is over with {Tasks} task(s) and {Runs} run(s) still going; they are stopped (tasks are delivered again, runs end failed)")]
    public static partial void DrainGraceOver(ILogger logger, TimeSpan grace, int tasks, int runs);

    // 42xx: locations.

    [LoggerMessage(EventId = 4200, Message = "{Location} ({Release}) {Kind}: {Detail}")]
    public static partial void LocationReport(ILogger logger, LogLevel level, string location, string release, string kind, string detail);

    [LoggerMessage(4201, LogLevel.Error, "supervising the code server of {Location} ({Release}) failed unexpectedly; counted as a crash")]
    public static partial void SupervisionFailed(ILogger logger, Exception exception, string location, string release);
}
