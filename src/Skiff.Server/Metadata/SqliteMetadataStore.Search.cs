namespace Skiff.Server.Metadata;

internal sealed partial class SqliteMetadataStore
{
    public Task<IReadOnlyList<RunRecord>> SearchRunsAsync(RunFilter filter, int offset, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        // Only the given parts become conditions, so a filter on location alone still walks runs_by_location.
        var conditions = new List<string>();
        var parameters = new List<(string, object?)> { ("$limit", limit), ("$offset", offset) };
        foreach (var (column, value) in new[] { ("location", filter.Location), ("job", filter.Job), ("status", filter.Status) })
        {
            if (value is not null)
            {
                conditions.Add($"{column} = ${column}");
                parameters.Add(($"${column}", value));
            }
        }

        var where = conditions.Count == 0 ? "" : " WHERE " + string.Join(" AND ", conditions);
        return ReadAsync(
            connection => ListAsync(
                Sql(connection, $"{SelectRun}{where} ORDER BY started_at DESC, seq DESC LIMIT $limit OFFSET $offset;", [.. parameters]),
                ReadRun,
                cancellationToken),
            cancellationToken);
    }

    public Task<IReadOnlyList<RunCount>> CountRunsSinceAsync(DateTimeOffset since, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                // started_at is ISO 8601 in UTC with a fixed format, so text order is time order. Left to itself SQLite
                // scans all of runs_by_location to group without sorting; the covering index reads just the window.
                Sql(connection, "SELECT location, status, count(*) FROM runs INDEXED BY runs_recent_by_location_status WHERE started_at >= $since GROUP BY location, status;", ("$since", Time(since))),
                reader => new RunCount(reader.GetString(0), reader.GetString(1), reader.GetInt32(2)),
                cancellationToken),
            cancellationToken);
}
