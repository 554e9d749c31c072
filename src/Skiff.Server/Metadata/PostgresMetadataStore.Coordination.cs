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
            transaction => ExecuteAsync(Sql(transaction, "UPDATE agent_profiles SET seen_at = @now WHERE name = @name AND EXISTS (SELECT 1 FROM agents WHERE name = @name AND server = @server); DELETE FROM agents WHERE name = @name AND server = @server;", ("@name", agent), ("@server", server), ("@now", Now())), cancellationToken),
            cancellationToken).ConfigureAwait(false) > 0;

    public Task<IReadOnlyList<AgentConnection>> ListAgentConnectionsAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                Sql(connection, "SELECT name, server, connected_at FROM agents ORDER BY name;"),
                reader => new AgentConnection(reader.GetString(0), reader.GetString(1), ReadTime(reader, 2)),
                cancellationToken),
            cancellationToken);

    public async Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> ListPlacementsAsync(CancellationToken cancellationToken)
    {
        var rows = await ReadAsync(
            connection => ListAsync(Sql(connection, "SELECT location, agent FROM placements ORDER BY location, agent;"), reader => (Location: reader.GetString(0), Agent: reader.GetString(1)), cancellationToken),
            cancellationToken).ConfigureAwait(false);
        return rows.GroupBy(r => r.Location, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)[.. g.Select(r => r.Agent)], StringComparer.Ordinal);
    }

    public Task<bool> ReplacePlacementAsync(string location, IReadOnlyCollection<string> expected, IReadOnlyCollection<string> agents, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(location);
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(agents);
        return WriteAsync(
            async transaction =>
            {
                // One placement changes at a time per location, across servers: the compare below must see the
                // set another transaction is about to commit, not the one before it.
                await ExecuteAsync(Sql(transaction, "SELECT pg_advisory_xact_lock(hashtext('placement:' || @location));", ("@location", location)), cancellationToken).ConfigureAwait(false);
                var current = await ListAsync(Sql(transaction, "SELECT agent FROM placements WHERE location = @location;", ("@location", location)), reader => reader.GetString(0), cancellationToken).ConfigureAwait(false);
                if (!current.ToHashSet(StringComparer.Ordinal).SetEquals(expected))
                {
                    return false;
                }

                await ExecuteAsync(Sql(transaction, "DELETE FROM placements WHERE location = @location;", ("@location", location)), cancellationToken).ConfigureAwait(false);
                foreach (var agent in agents.Distinct(StringComparer.Ordinal))
                {
                    await ExecuteAsync(
                        Sql(transaction, "INSERT INTO placements (location, agent, assigned_at) VALUES (@location, @agent, @now);", ("@location", location), ("@agent", agent), ("@now", Now())),
                        cancellationToken).ConfigureAwait(false);
                }

                return true;
            },
            cancellationToken);
    }

    public Task RecordAgentAsync(string agent, IReadOnlyDictionary<string, string> labels, string capacityJson, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(agent);
        return WriteAsync(
            transaction => ExecuteAsync(
                Sql(
                    transaction,
                    """
                    INSERT INTO agent_profiles (name, labels_json, capacity_json, seen_at) VALUES (@name, @labels, @capacity, @now)
                    ON CONFLICT (name) DO UPDATE SET labels_json = excluded.labels_json, capacity_json = excluded.capacity_json, seen_at = excluded.seen_at;
                    """,
                    ("@name", agent),
                    ("@labels", System.Text.Json.JsonSerializer.Serialize(labels.ToDictionary(l => l.Key, l => l.Value, StringComparer.Ordinal))),
                    ("@capacity", capacityJson),
                    ("@now", Now())),
                cancellationToken),
            cancellationToken);
    }

    public Task RecordAgentLoadAsync(string agent, string loadJson, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(agent);
        return WriteAsync(
            transaction => ExecuteAsync(
                Sql(transaction, "UPDATE agent_profiles SET load_json = @load, seen_at = @now WHERE name = @name;", ("@name", agent), ("@load", loadJson), ("@now", Now())),
                cancellationToken),
            cancellationToken);
    }

    public async Task<bool> SetAgentDrainingAsync(string agent, bool draining, CancellationToken cancellationToken) =>
        await WriteAsync(
            transaction => ExecuteAsync(Sql(transaction, "UPDATE agent_profiles SET draining = @draining WHERE name = @name;", ("@name", agent), ("@draining", draining)), cancellationToken),
            cancellationToken).ConfigureAwait(false) > 0;

    public Task<IReadOnlyList<AgentProfile>> ListAgentProfilesAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                Sql(connection, "SELECT name, labels_json, capacity_json, load_json, draining, seen_at FROM agent_profiles ORDER BY name;"),
                reader => new AgentProfile(
                    reader.GetString(0),
                    System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(1)) ?? [],
                    reader.GetString(2),
                    ReadNullableString(reader, 3),
                    reader.GetBoolean(4),
                    ReadTime(reader, 5)),
                cancellationToken),
            cancellationToken);
}
