using Microsoft.Data.Sqlite;

namespace Skiff.Server.Metadata;

internal sealed partial class SqliteMetadataStore
{
    private const string SelectDeployment =
        """
        SELECT id, location, release, environment, source, path, blobs_uploaded, bytes_uploaded, timings_json,
               who, created_at, outcome, error, definitions_json, finished_at, rollback_of, memory_limit, git_commit, git_dirty, server,
               replicas, constraints, env_change, tasks_json, variant, experimental, min_replicas
        FROM deployments
        """;

    private const string SelectLocation =
        """
        SELECT l.name, l.live_deployment, l.live_release, l.definitions_json, l.updated_at, d.memory_limit, d.replicas, d.constraints, l.max_concurrent, d.tasks_json, d.variant, d.experimental, l.refuses_experimental, d.min_replicas, l.runs
        FROM locations l LEFT JOIN deployments d ON d.id = l.live_deployment
        """;

    public Task CreateDeploymentAsync(DeploymentRecord deployment, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deployment);
        ArgumentException.ThrowIfNullOrEmpty(deployment.Id, nameof(deployment));
        ArgumentException.ThrowIfNullOrEmpty(deployment.Location, nameof(deployment));
        ArgumentNullException.ThrowIfNull(deployment.TimingsMs, nameof(deployment));
        if (!DeploymentPaths.IsKnown(deployment.Path))
        {
            throw new ArgumentException($"'{deployment.Path}' is not a deployment path; expected one of the values in {nameof(DeploymentPaths)}.", nameof(deployment));
        }

        if (!DeploymentOutcomes.IsKnown(deployment.Outcome))
        {
            throw new ArgumentException($"'{deployment.Outcome}' is not a deployment outcome; expected one of the values in {nameof(DeploymentOutcomes)}.", nameof(deployment));
        }

        return WriteAsync(
            async transaction =>
            {
                // Checked here, not left to the constraints, so the error can say which reference is missing.
                if (await DeploymentExistsAsync(transaction, deployment.Id, cancellationToken).ConfigureAwait(false))
                {
                    throw MetadataConflictException.DuplicateId("deployment", deployment.Id);
                }

                if (!await ExistsAsync(Sql(transaction, "SELECT 1 FROM releases WHERE id = $id;", ("$id", deployment.Release.ToString())), cancellationToken).ConfigureAwait(false))
                {
                    throw MetadataNotFoundException.Release(deployment.Release, $"deployment '{deployment.Id}'");
                }

                if (deployment.RollbackOf is { } target && !await DeploymentExistsAsync(transaction, target, cancellationToken).ConfigureAwait(false))
                {
                    throw MetadataNotFoundException.Deployment(target);
                }

                await ExecuteAsync(
                    Sql(transaction, "INSERT INTO locations (name, updated_at) VALUES ($name, $now) ON CONFLICT (name) DO NOTHING;", ("$name", deployment.Location), ("$now", Now())),
                    cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(
                    Sql(
                        transaction,
                        """
                        INSERT INTO deployments (id, location, release, environment, source, path, blobs_uploaded, bytes_uploaded,
                                                 timings_json, who, created_at, outcome, error, definitions_json, finished_at, rollback_of, memory_limit,
                                                 git_commit, git_dirty, server, replicas, constraints, env_change, tasks_json, variant, experimental, min_replicas)
                        VALUES ($id, $location, $release, $environment, $source, $path, $blobsUploaded, $bytesUploaded,
                                $timings, $who, $createdAt, $outcome, $error, $definitions, $finishedAt, $rollbackOf, $memoryLimit,
                                $gitCommit, $gitDirty, $server, $replicas, $constraints, $envChange, $tasks, $variant, $experimental, $minReplicas);
                        """,
                        ("$id", deployment.Id),
                        ("$location", deployment.Location),
                        ("$release", deployment.Release.ToString()),
                        ("$environment", deployment.Environment.ToString()),
                        ("$source", deployment.Source.ToString()),
                        ("$path", deployment.Path),
                        ("$blobsUploaded", deployment.BlobsUploaded),
                        ("$bytesUploaded", deployment.BytesUploaded),
                        ("$timings", TimingsJson(deployment.TimingsMs)),
                        ("$who", deployment.Who),
                        ("$createdAt", Time(deployment.CreatedAt)),
                        ("$outcome", deployment.Outcome),
                        ("$error", deployment.Error),
                        ("$definitions", deployment.DefinitionsJson),
                        ("$finishedAt", Time(deployment.FinishedAt)),
                        ("$rollbackOf", deployment.RollbackOf),
                        ("$memoryLimit", deployment.MemoryLimit),
                        ("$gitCommit", deployment.Commit),
                        ("$server", deployment.Server),
                        ("$replicas", deployment.Replicas),
                        ("$constraints", deployment.Constraints),
                        ("$envChange", deployment.EnvChange),
                        ("$tasks", deployment.TasksJson),
                        ("$variant", deployment.Variant),
                        ("$experimental", deployment.Experimental),
                        ("$minReplicas", deployment.MinReplicas),
                        ("$gitDirty", deployment.Dirty)),
                    cancellationToken).ConfigureAwait(false);

                if (deployment.Outcome == DeploymentOutcomes.Live)
                {
                    await MakeLiveAsync(transaction, deployment.Location, deployment.Id, deployment.Release.ToString(), deployment.DefinitionsJson, cancellationToken).ConfigureAwait(false);
                }

                if (deployment.Outcome != DeploymentOutcomes.Pending)
                {
                    await EnqueueDeploymentDecidedAsync(transaction, deployment.Id, cancellationToken).ConfigureAwait(false);
                }
            },
            cancellationToken);
    }

    public Task CompleteDeploymentAsync(string id, string outcome, string? error, string? definitionsJson, string? tasksJson, IReadOnlyDictionary<string, long> timingsMs, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentNullException.ThrowIfNull(timingsMs);
        if (outcome is not (DeploymentOutcomes.Live or DeploymentOutcomes.Failed))
        {
            throw new ArgumentException($"a deployment completes as '{DeploymentOutcomes.Live}' or '{DeploymentOutcomes.Failed}', not '{outcome}'.", nameof(outcome));
        }

        return WriteAsync(
            async transaction =>
            {
                var deployment = await SingleOrNullAsync(Sql(transaction, $"{SelectDeployment} WHERE id = $id;", ("$id", id)), ReadDeployment, cancellationToken).ConfigureAwait(false)
                    ?? throw MetadataNotFoundException.Deployment(id);
                if (deployment.Outcome != DeploymentOutcomes.Pending)
                {
                    throw MetadataConflictException.DeploymentNotPending(id, deployment.Outcome);
                }

                await ExecuteAsync(
                    Sql(
                        transaction,
                        """
                        UPDATE deployments
                        SET outcome = $outcome, error = $error, definitions_json = $definitions, tasks_json = $tasks, timings_json = $timings, finished_at = $now
                        WHERE id = $id;
                        """,
                        ("$id", id),
                        ("$outcome", outcome),
                        ("$error", error),
                        ("$definitions", definitionsJson),
                        ("$tasks", tasksJson),
                        ("$timings", TimingsJson(timingsMs)),
                        ("$now", Now())),
                    cancellationToken).ConfigureAwait(false);

                if (outcome == DeploymentOutcomes.Live)
                {
                    await MakeLiveAsync(transaction, deployment.Location, id, deployment.Release.ToString(), definitionsJson, cancellationToken).ConfigureAwait(false);
                }

                await EnqueueDeploymentDecidedAsync(transaction, id, cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    public Task<DeploymentRecord?> GetDeploymentAsync(string id, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => SingleOrNullAsync(Sql(connection, $"{SelectDeployment} WHERE id = $id;", ("$id", id)), ReadDeployment, cancellationToken),
            cancellationToken);

    public Task<IReadOnlyList<DeploymentRecord>> ListDeploymentsAsync(string location, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return ReadAsync(
            connection => ListAsync(
                Sql(connection, $"{SelectDeployment} WHERE location = $location ORDER BY created_at DESC, seq DESC LIMIT $limit;", ("$location", location), ("$limit", limit)),
                ReadDeployment,
                cancellationToken),
            cancellationToken);
    }

    public Task<IReadOnlyList<DeploymentRecord>> ListLatestDeploymentsAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                // One index probe per location (deployments_by_location), not one query per location.
                Sql(connection, $"{SelectDeployment} WHERE seq IN (SELECT (SELECT d.seq FROM deployments d WHERE d.location = l.name ORDER BY d.created_at DESC, d.seq DESC LIMIT 1) FROM locations l);"),
                ReadDeployment,
                cancellationToken),
            cancellationToken);

    public Task<int> FailPendingDeploymentsAsync(string reason, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        return WriteAsync(
            async transaction =>
            {
                var failed = await ListAsync(
                    Sql(
                        transaction,
                        "UPDATE deployments SET outcome = $failed, error = $reason, finished_at = $now WHERE outcome = $pending RETURNING id;",
                        ("$failed", DeploymentOutcomes.Failed),
                        ("$pending", DeploymentOutcomes.Pending),
                        ("$reason", reason),
                        ("$now", Now())),
                    reader => reader.GetString(0),
                    cancellationToken).ConfigureAwait(false);
                foreach (var id in failed)
                {
                    await EnqueueDeploymentDecidedAsync(transaction, id, cancellationToken).ConfigureAwait(false);
                }

                return failed.Count;
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<LocationRecord>> ListLocationsAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(Sql(connection, $"{SelectLocation} ORDER BY l.name;"), ReadLocation, cancellationToken),
            cancellationToken);

    public Task<LocationRecord?> GetLocationAsync(string name, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => SingleOrNullAsync(Sql(connection, $"{SelectLocation} WHERE l.name = $name;", ("$name", name)), ReadLocation, cancellationToken),
            cancellationToken);

    private Task<int> MakeLiveAsync(SqliteTransaction transaction, string location, string deployment, string release, string? definitionsJson, CancellationToken cancellationToken) =>
        ExecuteAsync(
            Sql(
                transaction,
                """
                UPDATE locations
                SET live_deployment = $deployment, live_release = $release, definitions_json = $definitions, updated_at = $now
                WHERE name = $location;
                """,
                ("$location", location),
                ("$deployment", deployment),
                ("$release", release),
                ("$definitions", definitionsJson),
                ("$now", Now())),
            cancellationToken);

    private static Task<bool> DeploymentExistsAsync(SqliteTransaction transaction, string id, CancellationToken cancellationToken) =>
        ExistsAsync(Sql(transaction, "SELECT 1 FROM deployments WHERE id = $id;", ("$id", id)), cancellationToken);

    private static DeploymentRecord ReadDeployment(SqliteDataReader reader) => new(
        Id: reader.GetString(0),
        Location: reader.GetString(1),
        Release: ReadDigest(reader, 2),
        Environment: ReadDigest(reader, 3),
        Source: ReadDigest(reader, 4),
        Path: reader.GetString(5),
        BlobsUploaded: reader.GetInt32(6),
        BytesUploaded: reader.GetInt64(7),
        TimingsMs: ReadTimings(reader, 8),
        Who: reader.GetString(9),
        CreatedAt: ReadTime(reader, 10),
        Outcome: reader.GetString(11),
        Error: ReadNullableString(reader, 12),
        DefinitionsJson: ReadNullableString(reader, 13),
        FinishedAt: ReadNullableTime(reader, 14),
        RollbackOf: ReadNullableString(reader, 15),
        MemoryLimit: ReadNullableString(reader, 16),
        Commit: ReadNullableString(reader, 17),
        Dirty: reader.IsDBNull(18) ? null : reader.GetInt64(18) != 0,
        Server: ReadNullableString(reader, 19),
        Replicas: reader.IsDBNull(20) ? null : (int)reader.GetInt64(20),
        Constraints: ReadNullableString(reader, 21),
        EnvChange: ReadNullableString(reader, 22))
    {
        TasksJson = ReadNullableString(reader, 23),
        Variant = ReadNullableString(reader, 24),
        Experimental = ReadNullableString(reader, 25),
        MinReplicas = reader.IsDBNull(26) ? null : (int)reader.GetInt64(26),
    };

    private static LocationRecord ReadLocation(SqliteDataReader reader) => new(
        Name: reader.GetString(0),
        LiveDeployment: ReadNullableString(reader, 1),
        LiveRelease: ReadNullableDigest(reader, 2),
        DefinitionsJson: ReadNullableString(reader, 3),
        UpdatedAt: ReadTime(reader, 4),
        MemoryLimit: ReadNullableString(reader, 5),
        Replicas: reader.IsDBNull(6) ? 1 : (int)reader.GetInt64(6),
        Constraints: ReadNullableString(reader, 7))
    {
        TasksJson = ReadNullableString(reader, 9),
        Variant = ReadNullableString(reader, 10),
        MaxConcurrent = reader.IsDBNull(8) ? null : (int)reader.GetInt64(8),
        Experimental = ReadNullableString(reader, 11),
        RefusesExperimental = reader.GetInt64(12) != 0,
        MinReplicas = reader.IsDBNull(13) ? null : (int)reader.GetInt64(13),
        Runs = ReadNullableString(reader, 14) ?? RunHostings.Isolated,
    };
}
