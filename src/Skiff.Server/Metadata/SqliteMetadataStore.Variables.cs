using Microsoft.Data.Sqlite;

namespace Skiff.Server.Metadata;

internal sealed partial class SqliteMetadataStore
{
    public Task<IReadOnlyList<LocationVariableRecord>> ListLocationVariablesAsync(string location, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => ListAsync(
                Sql(connection, "SELECT location, name, value, secret, set_at, set_by FROM location_variables WHERE location = $location ORDER BY name;", ("$location", location)),
                ReadVariable,
                cancellationToken),
            cancellationToken);

    public Task ChangeLocationVariablesAsync(string location, IReadOnlyCollection<LocationVariableRecord> set, IReadOnlyCollection<string> unset, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(location);
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(unset);
        if (set.FirstOrDefault(v => v.Location != location) is { } stray)
        {
            throw new ArgumentException($"variable {stray.Name} is of location '{stray.Location}', not '{location}'.", nameof(set));
        }

        return WriteAsync(
            async transaction =>
            {
                foreach (var variable in set)
                {
                    await ExecuteAsync(
                        Sql(
                            transaction,
                            """
                            INSERT INTO location_variables (location, name, value, secret, set_at, set_by)
                            VALUES ($location, $name, $value, $secret, $setAt, $setBy)
                            ON CONFLICT (location, name) DO UPDATE SET value = excluded.value, secret = excluded.secret, set_at = excluded.set_at, set_by = excluded.set_by;
                            """,
                            ("$location", location),
                            ("$name", variable.Name),
                            ("$value", variable.Value),
                            ("$secret", variable.Secret),
                            ("$setAt", Time(variable.SetAt)),
                            ("$setBy", variable.SetBy)),
                        cancellationToken).ConfigureAwait(false);
                }

                foreach (var name in unset)
                {
                    await ExecuteAsync(
                        Sql(transaction, "DELETE FROM location_variables WHERE location = $location AND name = $name;", ("$location", location), ("$name", name)),
                        cancellationToken).ConfigureAwait(false);
                }
            },
            cancellationToken);
    }

    private static LocationVariableRecord ReadVariable(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        reader.GetString(2),
        reader.GetInt64(3) != 0,
        ReadTime(reader, 4),
        reader.GetString(5));
}
