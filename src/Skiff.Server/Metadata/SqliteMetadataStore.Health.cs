namespace Skiff.Server.Metadata;

internal sealed partial class SqliteMetadataStore
{
    public Task AppendLocationHealthAsync(LocationHealthRecord report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        return WriteAsync(
            async transaction =>
            {
                await ExecuteAsync(
                    Sql(
                        transaction,
                        "INSERT INTO location_health (location, agent, release, kind, message, at) VALUES ($location, $agent, $release, $kind, $message, $at);",
                        ("$location", report.Location),
                        ("$agent", report.Agent),
                        ("$release", report.Release),
                        ("$kind", report.Kind),
                        ("$message", report.Message),
                        ("$at", Time(report.At))),
                    cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(
                    Sql(
                        transaction,
                        """
                        DELETE FROM location_health WHERE location = $location
                        AND seq <= (SELECT seq FROM location_health WHERE location = $location ORDER BY seq DESC LIMIT 1 OFFSET $kept);
                        """,
                        ("$location", report.Location),
                        ("$kept", IMetadataStore.KeptHealthReportsPerLocation)),
                    cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    public Task<IReadOnlyList<LocationHealthRecord>> ListLocationHealthAsync(string location, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return ReadAsync(
            connection => ListAsync(
                Sql(
                    connection,
                    "SELECT location, agent, release, kind, message, at FROM location_health WHERE location = $location ORDER BY seq DESC LIMIT $limit;",
                    ("$location", location),
                    ("$limit", limit)),
                reader => new LocationHealthRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), ReadTime(reader, 5)),
                cancellationToken),
            cancellationToken);
    }
}
