using Npgsql;

namespace Skiff.Server.Metadata;

internal sealed partial class PostgresMetadataStore
{
    /// <summary>
    /// Taken (per transaction) by every migration step, so servers started at once against one database
    /// migrate it one after another: the second finds the step applied and skips it. An arbitrary constant,
    /// shared by every Skiff; PostgreSQL's advisory locks are per database, so other databases are unaffected.
    /// </summary>
    internal const long MigrationLock = 0x736B_6966_666D_6967; // "skiffmig" in ASCII

    /// <summary>
    /// The schema, as the scripts that build it: version n is <c>Migrations[n - 1]</c>. Append new
    /// scripts; never edit one that has shipped, since databases in the field already ran it. Versions
    /// count on their own, apart from SQLite's.
    /// </summary>
    private static readonly string[] Migrations =
    [
        // Version 1: what SQLite's versions 1 to 3 built. JSON is kept as text, byte for byte as it was
        // given (jsonb would reorder and respace it). Names sort by byte ("C" collation), as SQLite's do,
        // whatever locale the database was created with. seq columns record insertion order and break ties
        // between equal timestamps.
        """
        CREATE TABLE releases (
            id text PRIMARY KEY,
            environment text NOT NULL,
            source text NOT NULL,
            entry_assembly text NOT NULL,
            sdk_version text,
            registered_at timestamptz NOT NULL
        );

        CREATE TABLE locations (
            name text COLLATE "C" PRIMARY KEY,
            live_deployment text,
            live_release text REFERENCES releases (id),
            definitions_json text,
            updated_at timestamptz NOT NULL
        );

        CREATE TABLE deployments (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            location text COLLATE "C" NOT NULL REFERENCES locations (name),
            release text NOT NULL REFERENCES releases (id),
            environment text NOT NULL,
            source text NOT NULL,
            path text NOT NULL,
            blobs_uploaded integer NOT NULL,
            bytes_uploaded bigint NOT NULL,
            timings_json text NOT NULL,
            who text NOT NULL,
            created_at timestamptz NOT NULL,
            outcome text NOT NULL,
            error text,
            definitions_json text,
            finished_at timestamptz,
            rollback_of text REFERENCES deployments (id),
            memory_limit text,
            git_commit text,
            git_dirty boolean
        );

        ALTER TABLE locations ADD FOREIGN KEY (live_deployment) REFERENCES deployments (id);

        CREATE INDEX deployments_by_location ON deployments (location, created_at DESC, seq DESC);
        CREATE INDEX deployments_pending ON deployments (outcome) WHERE outcome = 'pending';

        CREATE TABLE runs (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            location text COLLATE "C" NOT NULL REFERENCES locations (name),
            release text NOT NULL REFERENCES releases (id),
            job text NOT NULL,
            parameters_json text NOT NULL,
            status text NOT NULL,
            started_at timestamptz NOT NULL,
            finished_at timestamptz,
            reason text,
            agent text
        );

        CREATE INDEX runs_by_time ON runs (started_at DESC, seq DESC);
        CREATE INDEX runs_by_location ON runs (location, started_at DESC, seq DESC);
        CREATE INDEX runs_running ON runs (status) WHERE status = 'running';

        CREATE TABLE run_events (
            run_id text NOT NULL REFERENCES runs (id),
            seq bigint NOT NULL,
            json text NOT NULL,
            PRIMARY KEY (run_id, seq)
        );
        """,

        // Version 2. Coordination of servers that share the database: which server drives each pending
        // deployment, each server's heartbeat, which server holds each agent's connection, which agent hosts
        // each location, and the requests one server passes to another (ServerBus: a NOTIFY may be missed
        // while a listener reconnects, a row is not).
        """
        ALTER TABLE deployments ADD COLUMN server text;
        CREATE TABLE servers (
            id text PRIMARY KEY,
            started_at timestamptz NOT NULL,
            heartbeat_at timestamptz NOT NULL
        );
        CREATE TABLE agents (
            name text COLLATE "C" PRIMARY KEY,
            server text NOT NULL,
            connected_at timestamptz NOT NULL
        );
        CREATE TABLE assignments (
            location text COLLATE "C" PRIMARY KEY,
            agent text NOT NULL,
            assigned_at timestamptz NOT NULL
        );
        CREATE TABLE bus_requests (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            target text NOT NULL,
            sender text NOT NULL,
            body text NOT NULL,
            claimed boolean NOT NULL DEFAULT false,
            reply text,
            created_at timestamptz NOT NULL
        );
        CREATE INDEX bus_requests_open ON bus_requests (target) WHERE NOT claimed;
        CREATE INDEX bus_requests_answered ON bus_requests (sender) WHERE reply IS NOT NULL;
        """,

        // Version 3. A fleet of agents (docs/agent.md, "A fleet"): what each agent said of itself when it
        // connected (labels, capacity) and last reported (load), whether it is being drained, and when it was last
        // heard from; a location placed on several agents (replicas), and the placement a deployment asked for.
        """
        ALTER TABLE deployments ADD COLUMN replicas integer;
        ALTER TABLE deployments ADD COLUMN constraints text;
        CREATE TABLE agent_profiles (
            name text COLLATE "C" PRIMARY KEY,
            labels_json text NOT NULL,
            capacity_json text NOT NULL,
            load_json text,
            draining boolean NOT NULL DEFAULT false,
            seen_at timestamptz NOT NULL
        );
        CREATE TABLE placements (
            location text COLLATE "C" NOT NULL,
            agent text COLLATE "C" NOT NULL,
            assigned_at timestamptz NOT NULL,
            PRIMARY KEY (location, agent)
        );
        INSERT INTO placements (location, agent, assigned_at) SELECT location, agent, assigned_at FROM assignments;
        DROP TABLE assignments;
        """,

        // Version 4. Scoped tokens (only a hash of each secret) and the audit log of changes made with them
        // (docs/api.md, "Tokens and roles"). locations_json is a JSON array of names, empty for all.
        """
        CREATE TABLE tokens (
            name text COLLATE "C" PRIMARY KEY,
            role text NOT NULL,
            locations_json text NOT NULL,
            secret_hash text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL,
            created_by text NOT NULL
        );
        CREATE TABLE audit (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL,
            token text NOT NULL,
            action text NOT NULL,
            location text COLLATE "C",
            target text,
            detail text
        );
        CREATE INDEX audit_by_location ON audit (location, seq DESC);
        """,

        // Version 5: what SQLite's version 7 built. Webhooks (docs/webhooks.md): subscriptions, and the outbox of
        // deliveries, written in the transaction that records the run's or deployment's end. One delivery per
        // subscription, event and run or deployment (UNIQUE), leased by one sender at a time (claimed_by,
        // claimed_until; claims skip rows another server has locked), with every attempt kept.
        """
        CREATE TABLE webhook_subscriptions (
            id text PRIMARY KEY,
            url text NOT NULL,
            events_json text NOT NULL,
            location text COLLATE "C",
            secret text NOT NULL,
            created_at timestamptz NOT NULL,
            created_by text NOT NULL
        );
        CREATE TABLE webhook_deliveries (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            subscription text NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
            event text NOT NULL,
            subject text NOT NULL,
            location text COLLATE "C" NOT NULL,
            payload text NOT NULL,
            created_at timestamptz NOT NULL,
            status text NOT NULL,
            attempts integer NOT NULL,
            next_attempt_at timestamptz,
            claimed_by text,
            claimed_until timestamptz,
            UNIQUE (subscription, event, subject)
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
        CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription, seq DESC);
        CREATE TABLE webhook_attempts (
            delivery text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
            number integer NOT NULL,
            at timestamptz NOT NULL,
            http_status integer,
            error text,
            PRIMARY KEY (delivery, number)
        );
        """,

        // Version 6. The overview's runs of the last 24 hours per location and status, read from the index
        // alone over just that window (the web UI with 100,000 runs: docs/ui.md).
        """
        CREATE INDEX runs_recent_by_location_status ON runs (started_at, location, status);
        """,

        // Version 7. Cron schedules (docs/schedules.md): each tick recorded before its run starts, its key unique so
        // that servers sharing the database start one run per tick; which jobs' schedules are paused; and which runs
        // a schedule started.
        """
        CREATE TABLE schedule_ticks (
            location text COLLATE "C" NOT NULL,
            job text COLLATE "C" NOT NULL,
            schedule text COLLATE "C" NOT NULL,
            tick_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL,
            server text NOT NULL,
            run_id text,
            note text,
            PRIMARY KEY (location, job, schedule, tick_at)
        );
        CREATE TABLE schedule_states (
            location text COLLATE "C" NOT NULL,
            job text COLLATE "C" NOT NULL,
            paused_at timestamptz,
            resumed_at timestamptz,
            PRIMARY KEY (location, job)
        );
        ALTER TABLE runs ADD COLUMN started_by text;
        """,

        // Health history (docs/logs.md): what agents reported about each location, its newest 200 kept. seq is the
        // order a server recorded them in, which the agents' clocks need not agree with.
        """
        CREATE TABLE location_health (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            location text COLLATE "C" NOT NULL,
            agent text NOT NULL,
            release text NOT NULL,
            kind text NOT NULL,
            message text NOT NULL,
            at timestamptz NOT NULL
        );
        CREATE INDEX location_health_by_location ON location_health (location, seq);
        """,

        // Run queue (docs/run-queue.md): a location's limit on its running runs, kept across deploys; when a run that went
        // through the queue was requested, and the limit its job declared then. Queued runs start in insertion order.
        """
        ALTER TABLE locations ADD COLUMN max_concurrent integer;
        ALTER TABLE runs ADD COLUMN queued_at timestamptz;
        ALTER TABLE runs ADD COLUMN job_max_concurrent integer;
        CREATE INDEX runs_queued ON runs (location, seq) WHERE status = 'queued';
        CREATE INDEX runs_running_by_location ON runs (location, job) WHERE status = 'running';
        """,

        // Environment and secrets per location (docs/env.md): one row per variable. A secret's value is sealed by the
        // server (Variables/SecretBox.cs) before it gets here, so the database never holds it in plain text. A
        // deployment that took a change live names it (names only) in env_change.
        """
        CREATE TABLE location_variables (
            location text COLLATE "C" NOT NULL,
            name text COLLATE "C" NOT NULL,
            value text NOT NULL,
            secret boolean NOT NULL,
            set_at timestamptz NOT NULL,
            set_by text NOT NULL,
            PRIMARY KEY (location, name)
        );
        ALTER TABLE deployments ADD COLUMN env_change text;
        """,

        // Tasks and pools (docs/tasks.md): the tasks a version reported it serves, as JSON, beside its jobs. A location is
        // a pool while its live deployment has them (read through locations.live_deployment, so not copied there).
        """
        ALTER TABLE deployments ADD COLUMN tasks_json text;
        """,

        // Task queues (docs/queues.md): each pool's queued tasks, leased to one worker at a time (leased_by, leased_until;
        // leases skip rows another server has locked) and delivered in insertion order; and each task's result, recorded
        // once (its primary key), in the transaction that takes the task off the queue.
        """
        CREATE TABLE tasks (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            pool text COLLATE "C" NOT NULL,
            payload bytea NOT NULL,
            headers_json text NOT NULL,
            published_at timestamptz NOT NULL,
            deliveries integer NOT NULL,
            last_error text,
            leased_by text,
            leased_until timestamptz
        );
        CREATE INDEX tasks_by_pool ON tasks (pool, seq);
        CREATE TABLE task_results (
            task_id text PRIMARY KEY,
            pool text COLLATE "C" NOT NULL,
            succeeded boolean NOT NULL,
            payload bytea,
            error text,
            deliveries integer NOT NULL,
            recorded_at timestamptz NOT NULL
        );
        """,

        // Environment variants (docs/build.md): the variant of each deployment's environment, as its manifest names it.
        """
        ALTER TABLE deployments ADD COLUMN variant text;
        """,

        // Experimental dependencies (docs/build.md): the packages a deployment's release carries besides its environment
        // (null for none), and whether a location refuses such releases (`skiff locations set L --no-exp`).
        """
        ALTER TABLE deployments ADD COLUMN experimental text;
        ALTER TABLE locations ADD COLUMN refuses_experimental boolean NOT NULL DEFAULT false;
        """,

        // Pools that scale with their work (docs/tasks.md, "Scaling a pool"): the fewest replicas of a deployment deployed
        // with --replicas MIN..MAX (replicas holds MAX); null for a fixed number of replicas.
        """
        ALTER TABLE deployments ADD COLUMN min_replicas integer;
        """,

        // Where a location's runs execute (docs/agent.md, "Shared run host"): 'shared' in its release's shared run host;
        // null (or 'isolated') a process each. A setting of the location, kept across deploys.
        """
        ALTER TABLE locations ADD COLUMN runs text;
        """,

        // Calls canceled while their task waited on a broker (docs/tasks.md, "Scaling a pool"): the canceled result is
        // recorded at once, marked as leaving a copy on the broker until a worker takes and settles it; such copies are no
        // work for the pool's scaling.
        """
        ALTER TABLE task_results ADD COLUMN broker_copy boolean NOT NULL DEFAULT false;
        CREATE INDEX task_results_broker_copies ON task_results (pool) WHERE broker_copy;
        """,

        // Which delivery of a task reported its last_error (docs/queues.md): a redelivery is told that error only when the
        // delivery just before it reported it, not when that one ended without a word after an earlier one failed. Tasks
        // already queued: a ready one keeps its error as its reason (a failure, or a stop, gave it back); a leased one's
        // error came from a delivery before the one running.
        """
        ALTER TABLE tasks ADD COLUMN last_error_delivery integer;
        UPDATE tasks SET last_error_delivery = CASE WHEN leased_until IS NULL THEN deliveries ELSE deliveries - 1 END WHERE last_error IS NOT NULL;
        """,
    ];

    /// <summary>The newest schema version this code knows.</summary>
    internal static int KnownSchemaVersion => Migrations.Length;

    /// <summary>
    /// Applies the migrations the database lacks, one transaction each, every one under
    /// <see cref="MigrationLock"/> and deciding on the version it reads while holding it. A database at a
    /// newer version is refused before anything is written.
    /// </summary>
    private Task MigrateAsync(CancellationToken cancellationToken) =>
        RunAsync<bool>(
            async (connection, _) =>
            {
                while (true)
                {
                    await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                    await ExecuteAsync(Sql(transaction, "SELECT pg_advisory_xact_lock(@lock);", ("@lock", MigrationLock)), cancellationToken).ConfigureAwait(false);
                    var current = await ReadSchemaVersionAsync(transaction, cancellationToken).ConfigureAwait(false);
                    if (current > KnownSchemaVersion)
                    {
                        throw MetadataStoreException.NewerPostgresSchema(Database, current, KnownSchemaVersion);
                    }

                    if (current == KnownSchemaVersion)
                    {
                        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                        return true;
                    }

                    var version = current + 1;
                    await ExecuteAsync(Sql(transaction, "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL);"), cancellationToken).ConfigureAwait(false);
                    await ExecuteAsync(Sql(transaction, Migrations[version - 1]), cancellationToken).ConfigureAwait(false);
                    await ExecuteAsync(
                        Sql(transaction, "INSERT INTO schema_migrations (version, applied_at) VALUES (@version, @appliedAt);", ("@version", (int)version), ("@appliedAt", Now())),
                        cancellationToken).ConfigureAwait(false);
                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
            },
            transactional: false,
            cancellationToken);

    /// <summary>The highest migration applied to the database; 0 for a database Skiff never used.</summary>
    private static async Task<long> ReadSchemaVersionAsync(NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        // to_regclass follows the search path, as the unqualified table names of the migrations do.
        if (!await ExistsAsync(Sql(transaction, "SELECT 1 WHERE to_regclass('schema_migrations') IS NOT NULL;"), cancellationToken).ConfigureAwait(false))
        {
            return 0;
        }

        await using var version = Sql(transaction, "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations;");
        return (long)(await version.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }
}
