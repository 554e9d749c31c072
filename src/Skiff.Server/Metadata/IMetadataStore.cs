using Skiff.Core;
using Skiff.Core.Queues;
using Skiff.Server.Webhooks;

namespace Skiff.Server.Metadata;

/// <summary>
/// What the control plane records: releases, deployments and the live deployment of each location,
/// runs and their events. Implemented on SQLite (<see cref="SqliteMetadataStore"/>, embedded mode) and
/// on PostgreSQL (<see cref="PostgresMetadataStore"/>, scale-out). Safe to call from many requests at once; every write that changes more
/// than one row is one transaction, so a crash never leaves it half done.
/// </summary>
/// <remarks>
/// Ids of deployments and runs are chosen by callers. Lookups return null for what is not recorded;
/// writes that name something not recorded throw <see cref="MetadataNotFoundException"/>, and writes
/// that contradict what is recorded throw <see cref="MetadataConflictException"/> and change nothing.
/// Lists take a <c>limit</c> that must be positive.
/// </remarks>
internal interface IMetadataStore : ITaskStore, IAsyncDisposable
{
    /// <summary>How many of each location's most recent deployments keep their releases referenced.</summary>
    const int RetainedDeploymentsPerLocation = 10;

    /// <summary>
    /// Records a release. Registering the same release again is harmless and keeps the first
    /// <see cref="ReleaseRecord.RegisteredAt"/>. Returns whether it was new.
    /// </summary>
    /// <exception cref="MetadataConflictException">The id is registered with a different environment,
    /// source, entry assembly or SDK version.</exception>
    Task<bool> RegisterReleaseAsync(ReleaseRecord release, CancellationToken cancellationToken);

    Task<ReleaseRecord?> GetReleaseAsync(Digest id, CancellationToken cancellationToken);

    /// <summary>Whether any registered release uses this environment: a deploy of a new release with it takes the fast path.</summary>
    Task<bool> IsEnvironmentRegisteredAsync(Digest environment, CancellationToken cancellationToken);

    /// <summary>
    /// Records a deployment with the outcome it carries, normally <see cref="DeploymentOutcomes.Pending"/>,
    /// and creates its location (with nothing live) if this is the location's first deployment. A
    /// deployment recorded as live at once becomes its location's live deployment.
    /// </summary>
    /// <exception cref="MetadataNotFoundException">Its release, or the deployment it rolls back, is not recorded.</exception>
    /// <exception cref="MetadataConflictException">A deployment with this id is already recorded.</exception>
    Task CreateDeploymentAsync(DeploymentRecord deployment, CancellationToken cancellationToken);

    /// <summary>
    /// Decides a pending deployment's outcome (<see cref="DeploymentOutcomes.Live"/> or
    /// <see cref="DeploymentOutcomes.Failed"/>), replaces its timings with <paramref name="timingsMs"/>
    /// and stamps it finished now. A live outcome makes it its location's live deployment, with its
    /// definitions and tasks (<paramref name="tasksJson"/>, null when the version declares none), in the same
    /// transaction; a failed one leaves what was live.
    /// </summary>
    /// <exception cref="MetadataNotFoundException">No deployment has this id.</exception>
    /// <exception cref="MetadataConflictException">The deployment is not pending; nothing was changed.</exception>
    Task CompleteDeploymentAsync(string id, string outcome, string? error, string? definitionsJson, string? tasksJson, IReadOnlyDictionary<string, long> timingsMs, CancellationToken cancellationToken);

    Task<DeploymentRecord?> GetDeploymentAsync(string id, CancellationToken cancellationToken);

    /// <summary>A location's deployments, newest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<DeploymentRecord>> ListDeploymentsAsync(string location, int limit, CancellationToken cancellationToken);

    /// <summary>Every location's newest deployment, in one read (the web UI's overview of a thousand locations).</summary>
    Task<IReadOnlyList<DeploymentRecord>> ListLatestDeploymentsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Marks every pending deployment failed with <paramref name="reason"/>, leaving each location's live
    /// deployment as it was, and returns how many there were. Called when the server starts: a deployment
    /// the previous process did not finish is recorded as failed, never left half done.
    /// </summary>
    Task<int> FailPendingDeploymentsAsync(string reason, CancellationToken cancellationToken);

    /// <summary>Every location, by name (ordinal).</summary>
    Task<IReadOnlyList<LocationRecord>> ListLocationsAsync(CancellationToken cancellationToken);

    Task<LocationRecord?> GetLocationAsync(string name, CancellationToken cancellationToken);

    /// <summary>Records a run as it starts, normally <see cref="RunStatuses.Running"/>.</summary>
    /// <exception cref="MetadataNotFoundException">Its location or release is not recorded.</exception>
    /// <exception cref="MetadataConflictException">A run with this id is already recorded.</exception>
    Task CreateRunAsync(RunRecord run, CancellationToken cancellationToken);

    /// <summary>
    /// Records one event of a running run. An event whose <paramref name="seq"/> is already recorded for the run
    /// is ignored, so a worker may resend events after a reconnect; so is an event of a run that has ended, so a
    /// run's end is always its last event (a worker's late event must not land after <see cref="FailRunAsync"/>).
    /// Returns whether it was stored.
    /// </summary>
    /// <exception cref="MetadataNotFoundException">No run has this id.</exception>
    Task<bool> AppendRunEventAsync(string runId, long seq, string eventJson, CancellationToken cancellationToken);

    /// <summary>
    /// Records many events (of any runs) in one transaction, as if each were given to
    /// <see cref="AppendRunEventAsync"/> in turn, and ends each run whose end event (one with an
    /// <see cref="RunEventToStore.EndStatus"/>) comes while it is running, as <see cref="CompleteRunAsync"/>
    /// does (its webhook deliveries included), after its events before it and in the same transaction: an
    /// event after the end in the list is ignored. An event of a run that is not recorded is not stored and
    /// fails nothing else (<see cref="RunEventOutcome.UnknownRun"/>). Safe to repeat after a connection broke
    /// while committing. Returns what happened to each event, in the order given.
    /// </summary>
    /// <exception cref="ArgumentException">An event names no run, has no JSON, or ends with a status that is not final.</exception>
    Task<IReadOnlyList<RunEventOutcome>> AppendRunEventsAsync(IReadOnlyList<RunEventToStore> events, CancellationToken cancellationToken);

    /// <summary>
    /// Ends a running run as <see cref="RunStatuses.Failed"/> with <paramref name="reason"/> when its worker can no
    /// longer report, and stores its last event, made by <paramref name="lastEvent"/> from the ended run and the
    /// next sequence number, after every event stored. One transaction: no event of the worker's lands after it or
    /// takes its number. Returns false, changing nothing, when the run had already ended.
    /// </summary>
    /// <exception cref="MetadataNotFoundException">No run has this id.</exception>
    Task<bool> FailRunAsync(string runId, string reason, Func<RunRecord, long, string> lastEvent, CancellationToken cancellationToken);

    /// <summary>
    /// Ends a running run with a final <paramref name="status"/> and stamps it finished now. Returns false,
    /// changing nothing, when the run had already ended: the first report of an end wins, because a
    /// cancellation and the run's own end race as a matter of course.
    /// </summary>
    /// <exception cref="MetadataNotFoundException">No run has this id.</exception>
    Task<bool> CompleteRunAsync(string runId, string status, string? reason, CancellationToken cancellationToken);

    Task<RunRecord?> GetRunAsync(string id, CancellationToken cancellationToken);

    /// <summary>Runs, newest first, on one location or (when <paramref name="location"/> is null) all.</summary>
    Task<IReadOnlyList<RunRecord>> ListRunsAsync(string? location, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Runs, newest first, that match every part of <paramref name="filter"/> that is given, skipping the
    /// first <paramref name="offset"/> (a page of the web UI's run list).
    /// </summary>
    Task<IReadOnlyList<RunRecord>> SearchRunsAsync(RunFilter filter, int offset, int limit, CancellationToken cancellationToken);

    /// <summary>How many runs started at or after <paramref name="since"/>, per location and status.</summary>
    Task<IReadOnlyList<RunCount>> CountRunsSinceAsync(DateTimeOffset since, CancellationToken cancellationToken);

    /// <summary>
    /// A run's events with a sequence number above <paramref name="afterSeq"/>, in order, at most
    /// <paramref name="limit"/>; pass the last one's <see cref="RunEventRecord.Seq"/> to read on. Empty
    /// for a run that is not recorded.
    /// </summary>
    Task<IReadOnlyList<RunEventRecord>> GetRunEventsAsync(string runId, long afterSeq, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Every run still <see cref="RunStatuses.Running"/>, with the agent running it and the last event stored
    /// for it: what an agent is asked to resend after a reconnect, and what is failed when it never returns.
    /// </summary>
    Task<IReadOnlyList<RunningRun>> ListRunningRunsAsync(CancellationToken cancellationToken);

    // The run queue (docs/run-queue.md). Each call below that decides which runs start takes the location's row lock
    // (SQLite: the write transaction) first, so servers deciding for one location at once decide one after another,
    // and the running count each reads includes every run the ones before it started.

    /// <summary>Sets a location's limit on its running runs (<see cref="LocationRecord.MaxConcurrent"/>), or clears it with null. Kept across deploys.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The limit is below 1.</exception>
    /// <exception cref="MetadataNotFoundException">No location has this name; nothing was changed.</exception>
    Task SetLocationMaxConcurrentAsync(string location, int? maxConcurrent, CancellationToken cancellationToken);

    /// <summary>
    /// Sets whether a location refuses releases with experimental packages (<see cref="LocationRecord.RefusesExperimental"/>,
    /// `skiff locations set L --no-exp`). Kept across deploys.
    /// </summary>
    /// <exception cref="MetadataNotFoundException">There is no such location.</exception>
    Task SetLocationRefusesExperimentalAsync(string location, bool refuses, CancellationToken cancellationToken);

    /// <summary>
    /// Sets where a location's runs execute (<see cref="LocationRecord.Runs"/>, `skiff locations set L --runs shared`): one of
    /// <see cref="RunHostings.Names"/>. Kept across deploys.
    /// </summary>
    /// <exception cref="MetadataNotFoundException">There is no such location.</exception>
    /// <exception cref="ArgumentException"><paramref name="runs"/> is not one of <see cref="RunHostings.Names"/>.</exception>
    Task SetLocationRunsAsync(string location, string runs, CancellationToken cancellationToken);

    /// <summary>
    /// Records a run requested under a concurrency limit as <see cref="RunStatuses.Queued"/>, requested at its
    /// <see cref="RunRecord.StartedAt"/> with its job's <see cref="RunRecord.JobMaxConcurrent"/> (its status, agent and
    /// <see cref="RunRecord.QueuedAt"/> are ignored), then starts what fits as <see cref="StartQueuedRunsAsync"/> does,
    /// all in one transaction. Returns the runs it started, which the caller must now send to <paramref name="agent"/>:
    /// the new run among them, or not when it waits.
    /// </summary>
    /// <exception cref="MetadataNotFoundException">Its location, or its release, is not recorded.</exception>
    /// <exception cref="MetadataConflictException">A run with this id is already recorded.</exception>
    Task<IReadOnlyList<RunRecord>> QueueRunAsync(RunRecord run, string agent, CancellationToken cancellationToken);

    /// <summary>
    /// Starts a location's queued runs while its limits allow: in the order they were queued, each one whose start
    /// keeps the location within its <see cref="LocationRecord.MaxConcurrent"/> and its job within its
    /// <see cref="RunRecord.JobMaxConcurrent"/> (a run held back by its job's limit does not hold back other jobs'
    /// runs behind it). Each becomes <see cref="RunStatuses.Running"/> on <paramref name="agent"/>, started now, on
    /// the location's live release. One transaction. Returns the runs it started, for the caller to send to the agent;
    /// empty when none fits or none waits, or when the location has nothing live.
    /// </summary>
    Task<IReadOnlyList<RunRecord>> StartQueuedRunsAsync(string location, string agent, CancellationToken cancellationToken);

    /// <summary>
    /// Ends a <see cref="RunStatuses.Queued"/> run as <see cref="RunStatuses.Canceled"/> with <paramref name="reason"/>
    /// before it started, stamped started and finished now, with its one event made by <paramref name="lastEvent"/>
    /// (sequence number 1), as every run ends with an end event. Returns false, changing nothing, when the run is not
    /// queued (it started meanwhile, or ended).
    /// </summary>
    /// <exception cref="MetadataNotFoundException">No run has this id.</exception>
    Task<bool> CancelQueuedRunAsync(string runId, string reason, Func<RunRecord, long, string> lastEvent, CancellationToken cancellationToken);

    /// <summary>The locations that have queued runs, by name: what a server's periodic sweep tries to start.</summary>
    Task<IReadOnlyList<string>> ListLocationsWithQueuedRunsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// A location's runs that have not ended: how many each agent is running, and how many are queued (one entry with a
    /// null agent). Agents with none are left out; empty when nothing runs or waits. What keeps a pool that scales up, and
    /// on the agents running its runs (docs/tasks.md, "Scaling a pool").
    /// </summary>
    Task<IReadOnlyList<ActiveRuns>> CountActiveRunsAsync(string location, CancellationToken cancellationToken);

    /// <summary>
    /// The releases a blob garbage collector must keep: every location's live release, the releases of
    /// each location's <see cref="RetainedDeploymentsPerLocation"/> most recent deployments (so they can
    /// be rolled back to), of every pending deployment, and of every running run.
    /// </summary>
    Task<IReadOnlySet<Digest>> ListReferencedReleasesAsync(CancellationToken cancellationToken);

    /// <summary>Every pending deployment, the oldest (first registered) first: the one of each location that may go ahead.</summary>
    Task<IReadOnlyList<DeploymentRecord>> ListPendingDeploymentsAsync(CancellationToken cancellationToken);

    /// <summary>Records that a server process is alive: creates its row, started now, or moves its heartbeat to now.</summary>
    Task HeartbeatServerAsync(string server, CancellationToken cancellationToken);

    /// <summary>Every server that ever heartbeated, by id.</summary>
    Task<IReadOnlyList<ServerRecord>> ListServersAsync(CancellationToken cancellationToken);

    /// <summary>Records that <paramref name="server"/> now holds <paramref name="agent"/>'s connection, replacing whichever server held it.</summary>
    Task AgentConnectedAsync(string agent, string server, CancellationToken cancellationToken);

    /// <summary>
    /// Forgets <paramref name="agent"/>'s connection if <paramref name="server"/> still holds it (the agent may
    /// already have reconnected elsewhere). Returns whether it did.
    /// </summary>
    Task<bool> AgentDisconnectedAsync(string agent, string server, CancellationToken cancellationToken);

    /// <summary>Every recorded agent connection, by agent name. A row may outlive a server killed without warning: check its heartbeat.</summary>
    Task<IReadOnlyList<AgentConnection>> ListAgentConnectionsAsync(CancellationToken cancellationToken);

    /// <summary>The agents each placed location runs on, by location, each list in name order.</summary>
    Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> ListPlacementsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Places <paramref name="location"/> on <paramref name="agents"/> if it is still on exactly
    /// <paramref name="expected"/> (compared as sets; empty for a location not placed yet); otherwise leaves it.
    /// Returns whether it did, so of servers that place one location at once only one wins, and the others
    /// read the placement again.
    /// </summary>
    Task<bool> ReplacePlacementAsync(string location, IReadOnlyCollection<string> expected, IReadOnlyCollection<string> agents, CancellationToken cancellationToken);

    /// <summary>Records what an agent said of itself as it connected; keeps whether it is draining. Seen now.</summary>
    Task RecordAgentAsync(string agent, IReadOnlyDictionary<string, string> labels, string capacityJson, CancellationToken cancellationToken);

    /// <summary>Records an agent's latest load report. Seen now.</summary>
    Task RecordAgentLoadAsync(string agent, string loadJson, CancellationToken cancellationToken);

    /// <summary>Marks an agent draining (or not). Returns false for an agent never recorded.</summary>
    Task<bool> SetAgentDrainingAsync(string agent, bool draining, CancellationToken cancellationToken);

    /// <summary>Every agent ever recorded, by name.</summary>
    Task<IReadOnlyList<AgentProfile>> ListAgentProfilesAsync(CancellationToken cancellationToken);

    /// <summary>Records a token.</summary>
    /// <exception cref="MetadataConflictException">A token with this name is recorded; nothing was changed.</exception>
    Task CreateTokenAsync(TokenRecord token, CancellationToken cancellationToken);

    /// <summary>The token whose secret hashes to <paramref name="secretHash"/>, or null.</summary>
    Task<TokenRecord?> FindTokenAsync(string secretHash, CancellationToken cancellationToken);

    Task<TokenRecord?> GetTokenAsync(string name, CancellationToken cancellationToken);

    /// <summary>Every token, by name.</summary>
    Task<IReadOnlyList<TokenRecord>> ListTokensAsync(CancellationToken cancellationToken);

    /// <summary>Forgets a token, so its secret is refused from the next request on. Returns false for a name not recorded.</summary>
    Task<bool> DeleteTokenAsync(string name, CancellationToken cancellationToken);

    /// <summary>Appends one entry to the audit log.</summary>
    Task RecordAuditAsync(AuditRecord entry, CancellationToken cancellationToken);

    /// <summary>The audit log, newest first, of one location or all, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<AuditRecord>> ListAuditAsync(string? location, int limit, CancellationToken cancellationToken);

    // Webhooks (docs/webhooks.md). The outbox: every write above that gives a run its final status, or a deployment
    // its outcome (live or failed), adds in the same transaction one delivery for each subscription that wants the
    // event, and at most one per subscription, event and run or deployment however often it is called.

    /// <summary>Records a webhook subscription.</summary>
    /// <exception cref="MetadataConflictException">A subscription with this id is recorded; nothing was changed.</exception>
    Task CreateWebhookSubscriptionAsync(WebhookSubscription subscription, CancellationToken cancellationToken);

    /// <summary>Every webhook subscription, oldest first.</summary>
    Task<IReadOnlyList<WebhookSubscription>> ListWebhookSubscriptionsAsync(CancellationToken cancellationToken);

    /// <summary>Forgets a subscription and its deliveries, sent or not: none is tried again. Returns false for an id not recorded.</summary>
    Task<bool> DeleteWebhookSubscriptionAsync(string id, CancellationToken cancellationToken);

    /// <summary>Deliveries, newest first, of one subscription or (when <paramref name="subscription"/> is null) all, with their attempts.</summary>
    Task<IReadOnlyList<WebhookDelivery>> ListWebhookDeliveriesAsync(string? subscription, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Leases up to <paramref name="limit"/> pending deliveries whose next attempt is due now, the earliest due first, to
    /// <paramref name="claim"/> (a value new for each call) until now + <paramref name="lease"/>. A delivery leased and not
    /// yet recorded is not handed out again until its lease ends, to this store or any other on the same database: of
    /// servers claiming at once, each delivery goes to one. A sender that dies mid-attempt leaves it to the next claim after
    /// the lease (at-least-once).
    /// </summary>
    Task<IReadOnlyList<ClaimedWebhookDelivery>> ClaimWebhookDeliveriesAsync(string claim, TimeSpan lease, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Records an attempt at a delivery leased to <paramref name="claim"/> and ends the lease: the delivery becomes
    /// <paramref name="status"/> (<see cref="WebhookDeliveryStatuses"/>), tried again at <paramref name="nextAttemptAt"/> when
    /// still pending. The attempt is numbered after those recorded. Returns false, changing nothing, when the delivery is no
    /// longer leased to <paramref name="claim"/> (its subscription was removed, or the lease ran out and another sender took it).
    /// </summary>
    Task<bool> RecordWebhookAttemptAsync(string deliveryId, string claim, DateTimeOffset at, int? httpStatus, string? error, string status, DateTimeOffset? nextAttemptAt, CancellationToken cancellationToken);
    /// <summary>
    /// Records a tick of a schedule unless it is recorded already (its location, job, schedule and time are the key), in
    /// one statement: of any number of servers that evaluate the tick, exactly one gets true and starts its run. Ticks of
    /// the schedule more than 30 days older than this one are forgotten; the newest is all evaluation reads.
    /// </summary>
    Task<bool> RecordScheduleTickAsync(ScheduleTickRecord tick, CancellationToken cancellationToken);

    /// <summary>
    /// Notes what came of a recorded tick: the run it started (which is stamped <c>started_by</c>
    /// <c>schedule:JOB</c> in the same transaction), or why it started none. Returns false, changing nothing, when no
    /// such tick is recorded.
    /// </summary>
    Task<bool> CompleteScheduleTickAsync(ScheduleTickRecord tick, string? run, string? note, CancellationToken cancellationToken);

    /// <summary>The newest recorded tick of every schedule, or of every schedule on <paramref name="location"/>.</summary>
    Task<IReadOnlyList<ScheduleTickRecord>> ListLatestScheduleTicksAsync(string? location, CancellationToken cancellationToken);

    /// <summary>
    /// Pauses a job's schedules on a location, or resumes them and stamps the resume now, so that ticks that came due while
    /// they were paused are never run. Pausing what is paused (or resuming what runs) changes nothing. Whether the job has
    /// schedules is the caller's to check: the state outlives releases.
    /// </summary>
    Task SetSchedulePausedAsync(string location, string job, bool paused, CancellationToken cancellationToken);

    /// <summary>Every job whose schedules were ever paused, or those on <paramref name="location"/>.</summary>
    Task<IReadOnlyList<ScheduleStateRecord>> ListScheduleStatesAsync(string? location, CancellationToken cancellationToken);

    // A location's health history (docs/logs.md, "Health history"): what agents reported about it, kept across restarts.

    /// <summary>How many of each location's newest health reports are kept; older ones are forgotten as new ones come.</summary>
    const int KeptHealthReportsPerLocation = 200;

    /// <summary>
    /// Appends an agent's report about a location to its health history and, in the same transaction, forgets all but
    /// its newest <see cref="KeptHealthReportsPerLocation"/>. The location need not be recorded (an agent may report
    /// about one deleted since).
    /// </summary>
    Task AppendLocationHealthAsync(LocationHealthRecord report, CancellationToken cancellationToken);

    /// <summary>
    /// Appends <paramref name="report"/> as <see cref="AppendLocationHealthAsync"/> does, but only while the newest report of its
    /// agent on its release is of kind <paramref name="newestKind"/>; returns whether it was appended. Several servers appending
    /// the same at once (each giving up on an agent) append it once.
    /// </summary>
    Task<bool> AppendLocationHealthIfNewestIsAsync(LocationHealthRecord report, string newestKind, CancellationToken cancellationToken);

    /// <summary>A location's health history, newest first (in the order the reports were appended), at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<LocationHealthRecord>> ListLocationHealthAsync(string location, int limit, CancellationToken cancellationToken);

    // A location's environment (docs/env.md): variables its code servers and runs get. The store keeps values as given;
    // a secret's is sealed by the caller before it comes here (Variables/SecretBox.cs).

    /// <summary>The variables of <paramref name="location"/>, by name (ordinal); none for a location never given any.</summary>
    Task<IReadOnlyList<LocationVariableRecord>> ListLocationVariablesAsync(string location, CancellationToken cancellationToken);

    /// <summary>
    /// Changes a location's variables in one transaction: each of <paramref name="set"/> (all of <paramref name="location"/>)
    /// is added or replaces the one of its name, then each name in <paramref name="unset"/> is removed (a name not
    /// there is no error). Either all of it is stored or none.
    /// </summary>
    /// <exception cref="ArgumentException">A variable of <paramref name="set"/> belongs to another location.</exception>
    Task ChangeLocationVariablesAsync(string location, IReadOnlyCollection<LocationVariableRecord> set, IReadOnlyCollection<string> unset, CancellationToken cancellationToken);
}
