using Microsoft.Data.Sqlite;

namespace Skiff.Server.Metadata;

internal sealed partial class SqliteMetadataStore
{
    /// <summary>
    /// The schema, as the scripts that build it: version n is <c>Migrations[n - 1]</c>. Append new
    /// scripts; never edit one that has shipped, since databases in the field already ran it.
    /// </summary>
    private static readonly string[] Migrations =
    [
        // Version 1. Times are ISO-8601 UTC text ("O"), digests "sha256:<hex>", timings a JSON object.
        // Allowed values of path, outcome and status are checked in code, not by CHECK constraints,
        // because SQLite can only change a CHECK by rebuilding the table. seq columns record insertion
        // order (AUTOINCREMENT never reuses a value), which breaks ties between equal timestamps.
        """
        CREATE TABLE releases (
            id TEXT PRIMARY KEY,
            environment TEXT NOT NULL,
            source TEXT NOT NULL,
            entry_assembly TEXT NOT NULL,
            sdk_version TEXT,
            registered_at TEXT NOT NULL
        ) STRICT;

        CREATE TABLE locations (
            name TEXT PRIMARY KEY,
            live_deployment TEXT REFERENCES deployments (id),
            live_release TEXT REFERENCES releases (id),
            definitions_json TEXT,
            updated_at TEXT NOT NULL
        ) STRICT;

        CREATE TABLE deployments (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            location TEXT NOT NULL REFERENCES locations (name),
            release TEXT NOT NULL REFERENCES releases (id),
            environment TEXT NOT NULL,
            source TEXT NOT NULL,
            path TEXT NOT NULL,
            blobs_uploaded INTEGER NOT NULL,
            bytes_uploaded INTEGER NOT NULL,
            timings_json TEXT NOT NULL,
            who TEXT NOT NULL,
            created_at TEXT NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT,
            definitions_json TEXT,
            finished_at TEXT,
            rollback_of TEXT REFERENCES deployments (id)
        ) STRICT;

        CREATE INDEX deployments_by_location ON deployments (location, created_at DESC, seq DESC);
        CREATE INDEX deployments_pending ON deployments (outcome) WHERE outcome = 'pending';

        CREATE TABLE runs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            location TEXT NOT NULL REFERENCES locations (name),
            release TEXT NOT NULL REFERENCES releases (id),
            job TEXT NOT NULL,
            parameters_json TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            reason TEXT
        ) STRICT;

        CREATE INDEX runs_by_time ON runs (started_at DESC, seq DESC);
        CREATE INDEX runs_by_location ON runs (location, started_at DESC, seq DESC);
        CREATE INDEX runs_running ON runs (status) WHERE status = 'running';

        CREATE TABLE run_events (
            run_id TEXT NOT NULL REFERENCES runs (id),
            seq INTEGER NOT NULL,
            json TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        ) STRICT, WITHOUT ROWID;
        """,

        // Version 2. The agent running each run, so a reconnecting agent can be asked for the events the
        // server missed; and each deployment's memory limit, which its location keeps while it is live.
        """
        ALTER TABLE runs ADD COLUMN agent TEXT;
        ALTER TABLE deployments ADD COLUMN memory_limit TEXT;
        """,

        // Version 3. The git commit each deployment was built from and whether its work tree was dirty
        // (0/1): provenance kept beside the release, since the commit is no longer built into it.
        """
        ALTER TABLE deployments ADD COLUMN git_commit TEXT;
        ALTER TABLE deployments ADD COLUMN git_dirty INTEGER;
        """,

        // Version 4. Coordination of servers that share the database (docs: "stateless servers"): which
        // server drives each pending deployment, each server's heartbeat, which server holds each agent's
        // connection, and which agent hosts each location. Embedded mode writes these too, so the code
        // that reads them is the same in both modes.
        """
        ALTER TABLE deployments ADD COLUMN server TEXT;
        CREATE TABLE servers (
            id TEXT PRIMARY KEY,
            started_at TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL
        ) STRICT;
        CREATE TABLE agents (
            name TEXT PRIMARY KEY,
            server TEXT NOT NULL,
            connected_at TEXT NOT NULL
        ) STRICT;
        CREATE TABLE assignments (
            location TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            assigned_at TEXT NOT NULL
        ) STRICT;
        """,

        // Version 5. A fleet of agents (docs/agent.md, "A fleet"): what each agent said of itself when it
        // connected (labels, capacity) and last reported (load), whether it is being drained, and when it was last
        // heard from; a location placed on several agents (replicas), and the placement a deployment asked for.
        """
        ALTER TABLE deployments ADD COLUMN replicas INTEGER;
        ALTER TABLE deployments ADD COLUMN constraints TEXT;
        CREATE TABLE agent_profiles (
            name TEXT PRIMARY KEY,
            labels_json TEXT NOT NULL,
            capacity_json TEXT NOT NULL,
            load_json TEXT,
            draining INTEGER NOT NULL DEFAULT 0,
            seen_at TEXT NOT NULL
        ) STRICT;
        CREATE TABLE placements (
            location TEXT NOT NULL,
            agent TEXT NOT NULL,
            assigned_at TEXT NOT NULL,
            PRIMARY KEY (location, agent)
        ) STRICT;
        INSERT INTO placements (location, agent, assigned_at) SELECT location, agent, assigned_at FROM assignments;
        DROP TABLE assignments;
        """,

        // Version 6. Scoped tokens (only a hash of each secret) and the audit log of changes made with them
        // (docs/api.md, "Tokens and roles"). locations_json is a JSON array of names, empty for all.
        """
        CREATE TABLE tokens (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            locations_json TEXT NOT NULL,
            secret_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        ) STRICT;
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            token TEXT NOT NULL,
            action TEXT NOT NULL,
            location TEXT,
            target TEXT,
            detail TEXT
        ) STRICT;
        CREATE INDEX audit_by_location ON audit (location, seq DESC);
        """,

        // Version 7. Webhooks (docs/webhooks.md): subscriptions, and the outbox of deliveries, written in the transaction
        // that records the run's or deployment's end. One delivery per subscription, event and run or deployment
        // (UNIQUE), leased by one sender at a time (claimed_by, claimed_until), with every attempt kept.
        """
        CREATE TABLE webhook_subscriptions (
            id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            events_json TEXT NOT NULL,
            location TEXT,
            secret TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        ) STRICT;
        CREATE TABLE webhook_deliveries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            subscription TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
            event TEXT NOT NULL,
            subject TEXT NOT NULL,
            location TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at TEXT,
            claimed_by TEXT,
            claimed_until TEXT,
            UNIQUE (subscription, event, subject)
        ) STRICT;
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
        CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription, seq DESC);
        CREATE TABLE webhook_attempts (
            delivery TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            at TEXT NOT NULL,
            http_status INTEGER,
            error TEXT,
            PRIMARY KEY (delivery, number)
        ) STRICT, WITHOUT ROWID;
        """,

        // Version 8. The overview's runs of the last 24 hours per location and status, read from the index
        // alone over just that window (the web UI with 100,000 runs: docs/ui.md).
        """
        CREATE INDEX runs_recent_by_location_status ON runs (started_at, location, status);
        """,

        // Version 9. Cron schedules (docs/schedules.md): each tick recorded before its run starts, its key unique so
        // that servers sharing the store start one run per tick; which jobs' schedules are paused; and which runs a
        // schedule started.
        """
        CREATE TABLE schedule_ticks (
            location TEXT NOT NULL,
            job TEXT NOT NULL,
            schedule TEXT NOT NULL,
            tick_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            server TEXT NOT NULL,
            run_id TEXT,
            note TEXT,
            PRIMARY KEY (location, job, schedule, tick_at)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE schedule_states (
            location TEXT NOT NULL,
            job TEXT NOT NULL,
            paused_at TEXT,
            resumed_at TEXT,
            PRIMARY KEY (location, job)
        ) STRICT;
        ALTER TABLE runs ADD COLUMN started_by TEXT;
        """,

        // Health history (docs/logs.md): what agents reported about each location, its newest 200 kept. seq is the
        // order the server heard them in, which the agents' clocks need not agree with.
        """
        CREATE TABLE location_health (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            location TEXT NOT NULL,
            agent TEXT NOT NULL,
            release TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            at TEXT NOT NULL
        ) STRICT;
        CREATE INDEX location_health_by_location ON location_health (location, seq);
        """,

        // Run queue (docs/run-queue.md): a location's limit on its running runs, kept across deploys; when a run that went
        // through the queue was requested, and the limit its job declared then. Queued runs start in insertion order.
        """
        ALTER TABLE locations ADD COLUMN max_concurrent INTEGER;
        ALTER TABLE runs ADD COLUMN queued_at TEXT;
        ALTER TABLE runs ADD COLUMN job_max_concurrent INTEGER;
        CREATE INDEX runs_queued ON runs (location, seq) WHERE status = 'queued';
        CREATE INDEX runs_running_by_location ON runs (location, job) WHERE status = 'running';
        """,

        // Environment and secrets per location (docs/env.md): one row per variable. A secret's value is sealed by the
        // server (Variables/SecretBox.cs) before it gets here, so this file never holds it in plain text. Not tied to
        // the locations table: the values are kept for whatever the location runs next. A deployment that took a
        // change live names it (names only) in env_change.
        """
        CREATE TABLE location_variables (
            location TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            secret INTEGER NOT NULL,
            set_at TEXT NOT NULL,
            set_by TEXT NOT NULL,
            PRIMARY KEY (location, name)
        ) STRICT, WITHOUT ROWID;
        ALTER TABLE deployments ADD COLUMN env_change TEXT;
        """,

        // Tasks and pools (docs/tasks.md): the tasks a version reported it serves, as JSON, beside its jobs. A location is
        // a pool while its live deployment has them (read through locations.live_deployment, so not copied there).
        """
        ALTER TABLE deployments ADD COLUMN tasks_json TEXT;
        """,

        // Task queues (docs/queues.md): each pool's queued tasks, leased to one worker at a time (leased_by, leased_until)
        // and delivered in insertion order; and each task's result, recorded once (its primary key), in the transaction
        // that takes the task off the queue. A result outlives its task row, so a late second completion finds it.
        """
        CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            pool TEXT NOT NULL,
            payload BLOB NOT NULL,
            headers_json TEXT NOT NULL,
            published_at TEXT NOT NULL,
            deliveries INTEGER NOT NULL,
            last_error TEXT,
            leased_by TEXT,
            leased_until TEXT
        ) STRICT;
        CREATE INDEX tasks_by_pool ON tasks (pool, seq);
        CREATE TABLE task_results (
            task_id TEXT PRIMARY KEY,
            pool TEXT NOT NULL,
            succeeded INTEGER NOT NULL,
            payload BLOB,
            error TEXT,
            deliveries INTEGER NOT NULL,
            recorded_at TEXT NOT NULL
        ) STRICT;
        """,

        // Environment variants (docs/build.md): the variant of each deployment's environment, as its manifest names it.
        """
        ALTER TABLE deployments ADD COLUMN variant TEXT;
        """,

        // Experimental dependencies (docs/build.md): the packages a deployment's release carries besides its environment
        // (null for none), and whether a location refuses such releases (`skiff locations set L --no-exp`).
        """
        ALTER TABLE deployments ADD COLUMN experimental TEXT;
        ALTER TABLE locations ADD COLUMN refuses_experimental INTEGER NOT NULL DEFAULT 0;
        """,

        // Pools that scale with their work (docs/tasks.md, "Scaling a pool"): the fewest replicas of a deployment deployed
        // with --replicas MIN..MAX (replicas holds MAX); null for a fixed number of replicas.
        """
        ALTER TABLE deployments ADD COLUMN min_replicas INTEGER;
        """,

        // Where a location's runs execute (docs/agent.md, "Shared run host"): 'shared' in its release's shared run host;
        // null (or 'isolated') a process each. A setting of the location, kept across deploys.
        """
        ALTER TABLE locations ADD COLUMN runs TEXT;
        """,

        // Calls canceled while their task waited on a broker (docs/tasks.md, "Scaling a pool"): the canceled result is
        // recorded at once, marked as leaving a copy on the broker until a worker takes and settles it; such copies are no
        // work for the pool's scaling.
        """
        ALTER TABLE task_results ADD COLUMN broker_copy INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX task_results_broker_copies ON task_results (pool) WHERE broker_copy = 1;
        """,

        // Which delivery of a task reported its last_error (docs/queues.md): a redelivery is told that error only when the
        // delivery just before it reported it, not when that one ended without a word after an earlier one failed. Tasks
        // already queued: a ready one keeps its error as its reason (a failure, or a stop, gave it back); a leased one's
        // error came from a delivery before the one running.
        """
        ALTER TABLE tasks ADD COLUMN last_error_delivery INTEGER;
        UPDATE tasks SET last_error_delivery = CASE WHEN leased_until IS NULL THEN deliveries ELSE deliveries - 1 END WHERE last_error IS NOT NULL;
        """,
    ];

    /// <summary>The script that builds schema version <paramref name="version"/> from the one before.</summary>
    internal static string MigrationScript(int version) => Migrations[version - 1];

    /// <summary>The newest schema version this code knows.</summary>
    internal static int KnownSchemaVersion => Migrations.Length;

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

        // Read before anything is written, so a database from a newer Skiff is left exactly as it was.
        var current = await ReadSchemaVersionAsync(connection, cancellationToken).ConfigureAwait(false);
        if (current > KnownSchemaVersion)
        {
            throw MetadataStoreException.NewerSchema(DatabasePath, current, KnownSchemaVersion);
        }

        // Stored in the file: set once, every later connection (and process) uses the log.
        using (var wal = Sql(connection, "PRAGMA journal_mode = WAL;"))
        {
            var mode = (string?)await wal.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                throw MetadataStoreException.WalUnavailable(DatabasePath, mode ?? "unknown");
            }
        }

        for (var version = current + 1; version <= KnownSchemaVersion; version++)
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            await ExecuteAsync(Sql(transaction, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);"), cancellationToken).ConfigureAwait(false);

            // Another process opening the same file may have applied it since it was read above.
            var applied = await ExistsAsync(Sql(transaction, "SELECT 1 FROM schema_migrations WHERE version = $version;", ("$version", version)), cancellationToken).ConfigureAwait(false);
            if (!applied)
            {
                await ExecuteAsync(Sql(transaction, Migrations[version - 1]), cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(
                    Sql(transaction, "INSERT INTO schema_migrations (version, applied_at) VALUES ($version, $appliedAt);", ("$version", version), ("$appliedAt", Now())),
                    cancellationToken).ConfigureAwait(false);
            }

            transaction.Commit();
        }
    }

    /// <summary>The highest migration applied to the database; 0 for a new, empty file.</summary>
    private static async Task<long> ReadSchemaVersionAsync(SqliteConnection connection, CancellationToken cancellationToken)
    {
        using (var table = Sql(connection, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations';"))
        {
            if (await table.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is null)
            {
                return 0;
            }
        }

        using var version = Sql(connection, "SELECT coalesce(max(version), 0) FROM schema_migrations;");
        return (long)(await version.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }
}
