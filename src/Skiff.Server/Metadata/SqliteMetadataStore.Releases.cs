using Microsoft.Data.Sqlite;
using Skiff.Core;

namespace Skiff.Server.Metadata;

internal sealed partial class SqliteMetadataStore
{
    private const string SelectRelease = "SELECT id, environment, source, entry_assembly, sdk_version, registered_at FROM releases";

    public Task<bool> RegisterReleaseAsync(ReleaseRecord release, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(release);
        ArgumentException.ThrowIfNullOrEmpty(release.EntryAssembly, nameof(release));
        return WriteAsync(
            async transaction =>
            {
                var inserted = await ExecuteAsync(
                    Sql(
                        transaction,
                        """
                        INSERT INTO releases (id, environment, source, entry_assembly, sdk_version, registered_at)
                        VALUES ($id, $environment, $source, $entryAssembly, $sdkVersion, $registeredAt)
                        ON CONFLICT (id) DO NOTHING;
                        """,
                        ("$id", release.Id.ToString()),
                        ("$environment", release.Environment.ToString()),
                        ("$source", release.Source.ToString()),
                        ("$entryAssembly", release.EntryAssembly),
                        ("$sdkVersion", release.SdkVersion),
                        ("$registeredAt", Time(release.RegisteredAt))),
                    cancellationToken).ConfigureAwait(false);
                if (inserted == 1)
                {
                    return true;
                }

                var recorded = await SingleOrNullAsync(Sql(transaction, $"{SelectRelease} WHERE id = $id;", ("$id", release.Id.ToString())), ReadRelease, cancellationToken).ConfigureAwait(false);
                if (recorded!.Environment != release.Environment
                    || recorded.Source != release.Source
                    || recorded.EntryAssembly != release.EntryAssembly
                    || recorded.SdkVersion != release.SdkVersion)
                {
                    throw MetadataConflictException.ReleaseMismatch(recorded, release);
                }

                return false;
            },
            cancellationToken);
    }

    public Task<ReleaseRecord?> GetReleaseAsync(Digest id, CancellationToken cancellationToken) =>
        ReadAsync(
            connection => SingleOrNullAsync(Sql(connection, $"{SelectRelease} WHERE id = $id;", ("$id", id.ToString())), ReadRelease, cancellationToken),
            cancellationToken);

    public Task<bool> IsEnvironmentRegisteredAsync(Digest environment, CancellationToken cancellationToken) =>
        ReadAsync(
            async connection => await SingleOrNullAsync(
                Sql(connection, "SELECT 1 FROM releases WHERE environment = $environment LIMIT 1;", ("$environment", environment.ToString())),
                _ => "registered",
                cancellationToken).ConfigureAwait(false) is not null,
            cancellationToken);

    public Task<IReadOnlySet<Digest>> ListReferencedReleasesAsync(CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlySet<Digest>>(
            async connection =>
            {
                var releases = await ListAsync(
                    Sql(
                        connection,
                        """
                        SELECT live_release FROM locations WHERE live_release IS NOT NULL
                        UNION
                        SELECT release FROM (
                            SELECT release, row_number() OVER (PARTITION BY location ORDER BY created_at DESC, seq DESC) AS recency
                            FROM deployments)
                        WHERE recency <= $retained
                        UNION
                        SELECT release FROM deployments WHERE outcome = $pending
                        UNION
                        SELECT release FROM runs WHERE status = $running;
                        """,
                        ("$retained", IMetadataStore.RetainedDeploymentsPerLocation),
                        ("$pending", DeploymentOutcomes.Pending),
                        ("$running", RunStatuses.Running)),
                    reader => ReadDigest(reader, 0),
                    cancellationToken).ConfigureAwait(false);
                return releases.ToHashSet();
            },
            cancellationToken);

    private static ReleaseRecord ReadRelease(SqliteDataReader reader) => new(
        Id: ReadDigest(reader, 0),
        Environment: ReadDigest(reader, 1),
        Source: ReadDigest(reader, 2),
        EntryAssembly: reader.GetString(3),
        SdkVersion: ReadNullableString(reader, 4),
        RegisteredAt: ReadTime(reader, 5));
}
