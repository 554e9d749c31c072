using Skiff.Server.Metadata;

namespace Skiff.Server.Tests.Metadata;

/// <summary>
/// An empty database for one test of the metadata contract, on SQLite (<see cref="TestDatabase"/>) or
/// PostgreSQL (<see cref="PostgresTestDatabase"/>), with the clock the stores opened on it use.
/// </summary>
internal interface IContractDatabase : IAsyncDisposable
{
    TestClock Clock { get; }

    /// <summary>Opens a store on the database; each call opens another, as another server would.</summary>
    Task<IMetadataStore> OpenStoreAsync();
}
