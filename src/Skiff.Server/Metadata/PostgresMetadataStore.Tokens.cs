using System.Text.Json;
using Npgsql;

namespace Skiff.Server.Metadata;

internal sealed partial class PostgresMetadataStore
{
    private const string SelectToken = "SELECT name, role, locations_json, secret_hash, created_at, created_by FROM tokens";

    public async Task CreateTokenAsync(TokenRecord token, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(token);
        var added = await WriteAsync(
            transaction => ExecuteAsync(
                Sql(
                    transaction,
                    "INSERT INTO tokens (name, role, locations_json, secret_hash, created_at, created_by) VALUES (@name, @role, @locations, @hash, @created, @by) ON CONFLICT DO NOTHING;",
                    ("@name", token.Name),
                    ("@role", token.Role),
                    ("@locations", JsonSerializer.Serialize(token.Locations)),
                    ("@hash", token.SecretHash),
                    ("@created", Time(token.CreatedAt)),
                    ("@by", token.CreatedBy)),
                cancellationToken),
            cancellationToken).ConfigureAwait(false);
        if (added == 0)
        {
            throw MetadataConflictException.DuplicateId("token", token.Name);
        }
    }

    public Task<TokenRecord?> FindTokenAsync(string secretHash, CancellationToken cancellationToken) =>
        ReadAsync(connection => SingleOrNullAsync(Sql(connection, $"{SelectToken} WHERE secret_hash = @hash;", ("@hash", secretHash)), ReadToken, cancellationToken), cancellationToken);

    public Task<TokenRecord?> GetTokenAsync(string name, CancellationToken cancellationToken) =>
        ReadAsync(connection => SingleOrNullAsync(Sql(connection, $"{SelectToken} WHERE name = @name;", ("@name", name)), ReadToken, cancellationToken), cancellationToken);

    public Task<IReadOnlyList<TokenRecord>> ListTokensAsync(CancellationToken cancellationToken) =>
        ReadAsync(connection => ListAsync(Sql(connection, $"{SelectToken} ORDER BY name;"), ReadToken, cancellationToken), cancellationToken);

    public async Task<bool> DeleteTokenAsync(string name, CancellationToken cancellationToken) =>
        await WriteAsync(transaction => ExecuteAsync(Sql(transaction, "DELETE FROM tokens WHERE name = @name;", ("@name", name)), cancellationToken), cancellationToken).ConfigureAwait(false) > 0;

    public Task RecordAuditAsync(AuditRecord entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return WriteAsync(
            transaction => ExecuteAsync(
                Sql(
                    transaction,
                    "INSERT INTO audit (at, token, action, location, target, detail) VALUES (@at, @token, @action, @location, @target, @detail);",
                    ("@at", Time(entry.At)),
                    ("@token", entry.Token),
                    ("@action", entry.Action),
                    ("@location", entry.Location),
                    ("@target", entry.Target),
                    ("@detail", entry.Detail)),
                cancellationToken),
            cancellationToken);
    }

    public Task<IReadOnlyList<AuditRecord>> ListAuditAsync(string? location, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var where = location is null ? "" : " WHERE location = @location";
        return ReadAsync(
            connection => ListAsync(
                Sql(connection, $"SELECT at, token, action, location, target, detail FROM audit{where} ORDER BY seq DESC LIMIT @limit;", ("@location", location), ("@limit", limit)),
                reader => new AuditRecord(ReadTime(reader, 0), reader.GetString(1), reader.GetString(2), ReadNullableString(reader, 3), ReadNullableString(reader, 4), ReadNullableString(reader, 5)),
                cancellationToken),
            cancellationToken);
    }

    private static TokenRecord ReadToken(NpgsqlDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        JsonSerializer.Deserialize<string[]>(reader.GetString(2)) ?? [],
        reader.GetString(3),
        ReadTime(reader, 4),
        reader.GetString(5));
}
