using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>
/// The metadata database itself cannot be used: it is from a newer Skiff, it is not a database, or it
/// cannot be opened as Skiff needs. Raised when the store is opened, before anything in the file changes.
/// </summary>
internal sealed class MetadataStoreException : SkiffException
{
    private MetadataStoreException(string databasePath, string message, Exception? innerException = null)
        : base(message, innerException) => DatabasePath = databasePath;

    /// <summary>The database file, as a full path.</summary>
    public string DatabasePath { get; }

    /// <summary>The database was migrated by a Skiff that knows more schema versions than this one.</summary>
    public static MetadataStoreException NewerSchema(string databasePath, long found, long known) =>
        new(databasePath, $"the metadata database at {databasePath} is at schema version {found}, but this version of Skiff only knows versions up to {known}: a newer Skiff has upgraded it. Run that newer Skiff (or a later one) against this data, or point this one at another data directory; the file was left unchanged.");

    /// <summary>The file is not a SQLite database, or is damaged beyond SQLite's reading.</summary>
    public static MetadataStoreException NotADatabase(string databasePath, Exception innerException) =>
        new(databasePath, $"{databasePath} is not a readable SQLite database ({innerException.Message}), so it cannot hold Skiff's metadata. Restore it from a backup or point the server at another data directory; the file was left unchanged.", innerException);

    /// <summary>SQLite could not open or create the file.</summary>
    public static MetadataStoreException CannotOpen(string databasePath, Exception innerException) =>
        new(databasePath, $"the metadata database at {databasePath} could not be opened ({innerException.Message}). Check that its folder exists and that this user may read and write it.", innerException);

    /// <summary>The file system refused write-ahead logging.</summary>
    public static MetadataStoreException WalUnavailable(string databasePath, string journalMode) =>
        new(databasePath, $"the metadata database at {databasePath} could not be switched to write-ahead logging (its journal mode stayed '{journalMode}'), which Skiff needs so that reads never wait for writes. Put the data directory on a local file system; network file systems often lack the shared memory WAL uses.");
}
