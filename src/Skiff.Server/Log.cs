namespace Skiff.Server;

/// <summary>
/// Every log line the server writes, source-generated. Event ids are stable (docs/logs.md) and grouped by area:
/// 1xxx hosting and the API, 2xxx deployments, 3xxx runs, 4xxx agents, 5xxx blobs, 6xxx webhooks, 7xxx schedules,
/// 8xxx task calls.
/// </summary>
internal static partial class Log
{
    // 1xxx: hosting and the API.

    [LoggerMessage(1000, LogLevel.Information, "skiff server {Server} listening on {Url}; metadata in {Metadata}, blobs in {Blobs}, task calls on {TaskQueue}")]
    public static partial void ServerStarted(ILogger logger, string server, Uri url, string metadata, string blobs, string taskQueue);

    [LoggerMessage(1001, LogLevel.Error, "{Method} {Path} failed with an unexpected error (request {RequestId}, token {Token}); answered 500")]
    public static partial void RequestFailed(ILogger logger, Exception exception, string method, string path, string requestId, string token);

    [LoggerMessage(1002, LogLevel.Error, "{Method} {Path} failed with an unexpected error after its answer had started (request {RequestId}, token {Token}); the connection is cut")]
    public static partial void RequestFailedAfterStart(ILogger logger, Exception exception, string method, string path, string requestId, string token);

    [LoggerMessage(1003, LogLevel.Error, "the heartbeat of server {Server} failed unexpectedly; it tries again at the next beat")]
    public static partial void HeartbeatFailed(ILogger logger, Exception exception, string server);

    // 2xxx: deployments.

    [LoggerMessage(2000, LogLevel.Information, "deployment {Deployment} of {Release} is live on {Location}")]
    public static partial void DeploymentLive(ILogger logger, string deployment, string release, string location);

    [LoggerMessage(2001, LogLevel.Warning, "deployment {Deployment} of {Release} on {Location} failed: {Error}")]
    public static partial void DeploymentFailed(ILogger logger, string deployment, string release, string location, string? error);

    // 3xxx: runs. Per run, so at Debug: a busy platform starts thousands an hour, and its runs' own events say more.

    [LoggerMessage(3000, LogLevel.Debug, "run {Run} of {Location}/{Job} started on agent {Agent}")]
    public static partial void RunStarted(ILogger logger, string run, string location, string job, string? agent);

    [LoggerMessage(3001, LogLevel.Warning, "run {Run} was failed: {Reason}")]
    public static partial void RunLost(ILogger logger, string run, string reason);

    [LoggerMessage(3002, LogLevel.Debug, "run {Run} of {Location}/{Job} is queued: the location or the job is at its concurrency limit")]
    public static partial void RunQueued(ILogger logger, string run, string location, string job);

    [LoggerMessage(3003, LogLevel.Debug, "run {Run} of {Location}/{Job} left the queue for agent {Agent} after {QueueWait}")]
    public static partial void RunDequeued(ILogger logger, string run, string location, string job, string? agent, TimeSpan? queueWait);

    [LoggerMessage(3004, LogLevel.Error, "a pass of the run queue failed; the next, in {Interval}, tries again")]
    public static partial void RunQueuePassFailed(ILogger logger, Exception exception, TimeSpan interval);

    // 4xxx: agents.

    [LoggerMessage(4000, LogLevel.Information, "agent {Agent} connected")]
    public static partial void AgentConnected(ILogger logger, string agent);

    [LoggerMessage(4001, LogLevel.Information, "agent {Agent} disconnected")]
    public static partial void AgentDisconnected(ILogger logger, string agent);

    [LoggerMessage(4002, LogLevel.Error, "a {Message} message from agent {Agent} failed unexpectedly; the connection goes on")]
    public static partial void AgentMessageFailed(ILogger logger, Exception exception, string message, string agent);

    [LoggerMessage(4003, LogLevel.Warning, "a {Message} message from agent {Agent} was not recorded: {Problem}")]
    public static partial void AgentMessageNotRecorded(ILogger logger, string message, string agent, string problem);

    [LoggerMessage(4004, LogLevel.Error, "catching agent {Agent} up with the store failed unexpectedly; its next connection tries again")]
    public static partial void AgentCatchUpFailed(ILogger logger, Exception exception, string agent);

    [LoggerMessage(4005, LogLevel.Error, "placing locations on the fleet failed unexpectedly; tried again in {Interval}")]
    public static partial void FleetWatchFailed(ILogger logger, Exception exception, TimeSpan interval);

    [LoggerMessage(4006, LogLevel.Error, "failing the runs of agent {Agent}, away past the grace period, failed unexpectedly")]
    public static partial void LostRunsFailed(ILogger logger, Exception exception, string agent);

    [LoggerMessage(EventId = 4007, Message = "agent {Agent} reports {Location} ({Release}) {Kind}: {Detail}")]
    public static partial void LocationReported(ILogger logger, LogLevel level, string agent, string location, string release, string kind, string detail);

    [LoggerMessage(4008, LogLevel.Warning, "a {Kind} report of {Location} from agent {Agent} was not kept in the health history: {Problem}")]
    public static partial void HealthNotKept(ILogger logger, string kind, string location, string agent, string problem);

    [LoggerMessage(4009, LogLevel.Error, "{Location} was not activated on reconnected agent {Agent}: {Problem}")]
    public static partial void ReconnectActivationSkipped(ILogger logger, string location, string agent, string problem);

    [LoggerMessage(4010, LogLevel.Information, "agent {Agent} is stopping: it finishes what it holds and gets no new tasks or runs")]
    public static partial void AgentDraining(ILogger logger, string agent);

    // 5xxx: blobs.

    [LoggerMessage(5000, LogLevel.Error, "a scrub pass over the blob store failed unexpectedly; the next is tried in {Retry}")]
    public static partial void ScrubFailed(ILogger logger, Exception exception, TimeSpan retry);

    [LoggerMessage(5001, LogLevel.Warning, "the scrub found blob {Blob} damaged and quarantined it; the next deploy that needs it uploads it again")]
    public static partial void BlobQuarantined(ILogger logger, string blob);

    [LoggerMessage(5002, LogLevel.Warning, "a scrub pass over the blob store stopped: {Problem}")]
    public static partial void ScrubStopped(ILogger logger, string problem);

    // 6xxx: webhooks.

    [LoggerMessage(6000, LogLevel.Error, "a pass of the webhook sender failed; leased deliveries are tried again when their lease ends")]
    public static partial void WebhookPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(6001, LogLevel.Debug, "webhook delivery {Delivery} to {Url}: {Outcome} ({Problem})")]
    public static partial void WebhookAttempted(ILogger logger, string delivery, string url, string outcome, string? problem);

    // 7xxx: schedules.

    [LoggerMessage(7000, LogLevel.Error, "a pass over the schedules failed; the next, in {Interval}, tries again")]
    public static partial void SchedulePassFailed(ILogger logger, Exception exception, TimeSpan interval);

    [LoggerMessage(7001, LogLevel.Warning, "the {Tick} tick of {Location}/{Job} started no run: {Problem}")]
    public static partial void ScheduledRunNotStarted(ILogger logger, DateTimeOffset tick, string location, string job, string problem);

    // 8xxx: task calls.

    [LoggerMessage(8000, LogLevel.Information, "task call {Call} to {Pool}/{Task} was refused: {Reason}")]
    public static partial void TaskCallRefused(ILogger logger, string call, string pool, string task, string reason);

    [LoggerMessage(8001, LogLevel.Warning, "task {Call} of pool {Pool} (delivery {Delivery}) was not run by agent {Agent}: {Problem} It is delivered again.")]
    public static partial void TaskDeliveryFailed(ILogger logger, string call, string pool, string agent, int delivery, string problem);

    [LoggerMessage(8002, LogLevel.Error, "the worker of pool {Pool} on agent {Agent} failed unexpectedly; the next check of the pools' workers starts another")]
    public static partial void PoolWorkerFailed(ILogger logger, Exception exception, string pool, string agent);

    [LoggerMessage(8003, LogLevel.Warning, "the pools' workers could not be checked: {Problem}; the next check, in {Interval}, tries again")]
    public static partial void PoolWorkersNotChecked(ILogger logger, string problem, TimeSpan interval);

    [LoggerMessage(8004, LogLevel.Error, "task call {Call} failed unexpectedly on this server; it is not waited for here")]
    public static partial void TaskCallFailed(ILogger logger, Exception exception, string call);

    [LoggerMessage(8005, LogLevel.Warning, "the results of the {Count} task calls waited for here could not be looked up: {Problem}; the next look, in {Interval}, tries again")]
    public static partial void TaskResultsNotChecked(ILogger logger, int count, string problem, TimeSpan interval);

    [LoggerMessage(8006, LogLevel.Information, "pool {Pool} scaled down off agent {Agent}, whose worker held no task: on {Count} agent(s) now")]
    public static partial void PoolScaledDown(ILogger logger, string pool, string agent, int count);

    [LoggerMessage(8007, LogLevel.Information, "pool {Pool} has {Work} task(s) ready or in flight and {Runs} run(s) not ended: placed on {Count} agent(s), scaling to {Desired}")]
    public static partial void PoolScaling(ILogger logger, string pool, long work, int runs, int count, int desired);

    [LoggerMessage(8008, LogLevel.Warning, "the pools that scale could not be checked: {Problem}; the next check, in {Interval}, tries again")]
    public static partial void PoolsNotScaled(ILogger logger, string problem, TimeSpan interval);

    [LoggerMessage(8009, LogLevel.Information, "task {Call} of pool {Pool} ended on agent {Agent} (delivery {Delivery}) while its answer could not reach its worker; the outcome the agent kept is recorded, and the task does not run again")]
    public static partial void TaskResultRecordedLate(ILogger logger, string call, string pool, string agent, int delivery);

    [LoggerMessage(8010, LogLevel.Warning, "the outcome agent {Agent} kept of task {Call} of pool {Pool} could not be recorded: {Problem}; the agent keeps it and sends it again when it next connects")]
    public static partial void TaskResultNotRecorded(ILogger logger, string call, string pool, string agent, string problem);

    [LoggerMessage(8020, LogLevel.Warning, "live events of task {Call} could not be sent on to the server its caller waits on: {Problem}; they come with its result")]
    public static partial void TaskEventsNotRelayed(ILogger logger, string call, string problem);

    [LoggerMessage(8011, LogLevel.Warning, "pool {Pool} has tasks waiting and is on no agent, and no connected agent can host it: {Reason} Its calls wait until one can")]
    public static partial void PoolUnplaceable(ILogger logger, string pool, string reason);
}
