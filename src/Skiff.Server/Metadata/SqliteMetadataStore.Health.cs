namespace Skiff.Server.Metadata;

internal sealed partial class SqliteMetadataStore
{
    public Task AppendLocationHealthAsync(LocationHealthRecord report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        return WriteAsync(transaction => AppendAsync(transaction, report, cancellationToken), cancellationToken);
    }

    public Task<bool> AppendLocationHealthIfNewestIsAsync(LocationHealthRecord report, string newestKind, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        return WriteAsync(
            async transaction =>
            {
                // An IMMEDIATE transaction (WriteAsync): no other write comes between this look and the append.
                if (!await ExistsAsync(
                        Sql(
                            transaction,
                            "SELECT 1 FROM (SELECT kind FROM location_health WHERE location = $location AND agent = $agent AND release = $release ORDER BY seq DESC LIMIT 1) newest WHERE kind = $kind;",
                            ("$location", report.Location),
                            ("$agent", report.Agent),
                            ("$release", report.Release),
                            ("$kind", newestKind)),
                        cancellationToken).ConfigureAwait(false))
                {
                    return false;
                }

                await AppendAsync(transaction, report, cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }

    /// <summary>Appends a report and forgets all but the location's newest <see cref="IMetadataStore.KeptHealthReportsPerLocation"/>.</summary>
    private static async Task AppendAsync(Microsoft.Data.Sqlite.SqliteTransaction transaction, LocationHealthRecord report, CancellationToken cancellationToken)
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
