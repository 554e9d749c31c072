namespace Skiff.Server.Metadata;

internal sealed partial class PostgresMetadataStore
{
    public Task<IReadOnlyList<RunRecord>> SearchRunsAsync(RunFilter filter, int offset, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        // Only the given parts become conditions, so a filter on location alone still walks runs_by_location.
        var conditions = new List<string>();
        var parameters = new List<(string, object?)> { ("@limit", limit), ("@offset", offset) };
        foreach (var (column, value) in new[] { ("location", filter.Location), ("job", filter.Job), ("status", filter.Status) })
        {
            if (value is not null)
            {
                conditions.Add($"{column} = @{column}");
                parameters.Add(($"@{column}", value));
            }
        }

        var where = conditions.Count == 0 ? "" : " WHERE " + string.Join(" AND ", conditions);
        return ReadAsync(
            connection => ListAsync(
                Sql(connection, $"{SelectRun}{where} ORDER BY started_at DESC, seq DESC LIMIT @limit OFFSET @offset;", [.. parameters]),
                ReadRun,
                cancellationToken),
            cancellationToken);
    }

    public Task<IReadOnlyList<RunCount>> CountRunsSinceAsync(DateTimeOffset since, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                // count(*) is a bigint.
                Sql(connection, "SELECT location, status, count(*) FROM runs WHERE started_at >= @since GROUP BY location, status;", ("@since", since.ToUniversalTime())),
                reader => new RunCount(reader.GetString(0), reader.GetString(1), (int)reader.GetInt64(2)),
                cancellationToken),
            cancellationToken);
}
