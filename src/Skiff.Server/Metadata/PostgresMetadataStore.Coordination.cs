namespace Skiff.Server.Metadata;

internal sealed partial class PostgresMetadataStore
{
    public Task<IReadOnlyList<DeploymentRecord>> ListPendingDeploymentsAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(Sql(connection, $"{SelectDeployment} WHERE outcome = @pending ORDER BY seq;", ("@pending", DeploymentOutcomes.Pending)), ReadDeployment, cancellationToken),
            cancellationToken);

    public Task HeartbeatServerAsync(string server, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(server);
        return WriteAsync(
            transaction => ExecuteAsync(
                Sql(
                    transaction,
                    "INSERT INTO servers (id, started_at, heartbeat_at) VALUES (@id, @now, @now) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at;",
                    ("@id", server),
                    ("@now", Now())),
                cancellationToken),
            cancellationToken);
    }

    public Task<IReadOnlyList<ServerRecord>> ListServersAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                Sql(connection, "SELECT id, started_at, heartbeat_at FROM servers ORDER BY id;"),
                reader => new ServerRecord(reader.GetString(0), ReadTime(reader, 1), ReadTime(reader, 2)),
                cancellationToken),
            cancellationToken);

    public Task AgentConnectedAsync(string agent, string server, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(agent);
        ArgumentException.ThrowIfNullOrEmpty(server);
        return WriteAsync(
            transaction => ExecuteAsync(
                Sql(
                    transaction,
                    "INSERT INTO agents (name, server, connected_at) VALUES (@name, @server, @now) ON CONFLICT (name) DO UPDATE SET server = excluded.server, connected_at = excluded.connected_at;",
                    ("@name", agent),
                    ("@server", server),
                    ("@now", Now())),
                cancellationToken),
            cancellationToken);
    }

    public async Task<bool> AgentDisconnectedAsync(string agent, string server, CancellationToken cancellationToken) =>
        await WriteAsync(
            transaction => ExecuteAsync(Sql(transaction, "DELETE FROM agents WHERE name = @name AND server = @server;", ("@name", agent), ("@server", server)), cancellationToken),
            cancellationToken).ConfigureAwait(false) > 0;

    public Task<IReadOnlyList<AgentConnection>> ListAgentConnectionsAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                Sql(connection, "SELECT name, server, connected_at FROM agents ORDER BY name;"),
                reader => new AgentConnection(reader.GetString(0), reader.GetString(1), ReadTime(reader, 2)),
                cancellationToken),
            cancellationToken);

    public async Task<IReadOnlyDictionary<string, string>> ListAssignmentsAsync(CancellationToken cancellationToken)
    {
        var rows = await ReadAsync(
            connection => ListAsync(Sql(connection, "SELECT location, agent FROM assignments;"), reader => (Location: reader.GetString(0), Agent: reader.GetString(1)), cancellationToken),
            cancellationToken).ConfigureAwait(false);
        return rows.ToDictionary(r => r.Location, r => r.Agent, StringComparer.Ordinal);
    }

    public Task<string> AssignLocationAsync(string location, string agent, string? replacing, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(location);
        ArgumentException.ThrowIfNullOrEmpty(agent);
        return WriteAsync(
            async transaction =>
            {
                // The upsert changes an existing row only when it still names the agent being replaced; a second
                // server racing on the same stale assignment waits on the row lock, finds it changed, and reads
                // the winner (READ COMMITTED sees the committed row).
                await ExecuteAsync(
                    Sql(
                        transaction,
                        """
                        INSERT INTO assignments (location, agent, assigned_at) VALUES (@location, @agent, @now)
                        ON CONFLICT (location) DO UPDATE SET agent = excluded.agent, assigned_at = excluded.assigned_at
                        WHERE assignments.agent = @replacing;
                        """,
                        ("@location", location),
                        ("@agent", agent),
                        ("@replacing", replacing),
                        ("@now", Now())),
                    cancellationToken).ConfigureAwait(false);
                await using var read = Sql(transaction, "SELECT agent FROM assignments WHERE location = @location;", ("@location", location));
                return (string)(await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            },
            cancellationToken);
    }
}
