using Skiff.Server.Hosting;

namespace Skiff.Server.Metadata;

/// <summary>Opens the metadata store <see cref="ServerOptions.Metadata"/> chooses.</summary>
internal static class MetadataStores
{
    /// <summary>SQLite at <see cref="ServerOptions.DatabasePath"/> when no database is named, else PostgreSQL.</summary>
    /// <exception cref="MetadataStoreException">The setting is not understood, or the database cannot be opened, reached or used.</exception>
    public static async Task<IMetadataStore> OpenAsync(ServerOptions options, TimeProvider time, CancellationToken cancellationToken) =>
        options.Metadata is { } database
            ? await PostgresMetadataStore.OpenAsync(database, time, cancellationToken).ConfigureAwait(false)
            : await SqliteMetadataStore.OpenAsync(options.DatabasePath, time, cancellationToken).ConfigureAwait(false);
}
