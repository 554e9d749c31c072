using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>
/// The metadata database itself cannot be used: it is from a newer Skiff, it is not a database, it
/// cannot be opened as Skiff needs, or (PostgreSQL) it cannot be reached or refused an operation. Raised
/// when the store is opened, before anything in the database changes, or by an operation that then
/// changed nothing (unless the message says the connection broke while committing).
/// </summary>
internal sealed class MetadataStoreException : SkiffException
{
    private MetadataStoreException(string databasePath, string message, Exception? innerException = null)
        : base(message, innerException) => DatabasePath = databasePath;

    /// <summary>
    /// PostgreSQL could not be reached or the connection broke: the same call may work in a moment (a restart,
    /// a failover), unlike every other reason here, which needs someone to act.
    /// </summary>
    public bool IsUnreachable { get; private init; }

    /// <summary>The database: a SQLite file's full path, or a PostgreSQL database as <c>postgresql://user@host:port/database</c> (never with its password).</summary>
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

    /// <summary>The PostgreSQL database was migrated by a Skiff that knows more schema versions than this one.</summary>
    public static MetadataStoreException NewerPostgresSchema(string database, long found, long known) =>
        new(database, $"the metadata database {database} is at schema version {found}, but this version of Skiff only knows versions up to {known}: a newer Skiff has upgraded it. Run that newer Skiff (or a later one) against it, or point this one at another database; nothing in it was changed.");

    /// <summary>A PostgreSQL database setting that is neither a URL nor a connection string. It is not repeated, since it may hold a password.</summary>
    public static MetadataStoreException BadConnectionString(string reason) =>
        new("", $"the PostgreSQL metadata database setting is not understood: {reason}. Give a URL such as postgres://skiff@db.example:5432/skiff or an Npgsql connection string such as Host=db.example;Port=5432;Username=skiff;Database=skiff.");

    /// <summary>
    /// PostgreSQL could not be reached, or the connection broke (PostgreSQL restarting). When it broke while
    /// committing, the change may have been recorded whole; it is never recorded in part.
    /// </summary>
    public static MetadataStoreException Unreachable(string database, Exception innerException, bool mayHaveCommitted) =>
        new(
            database,
            $"the metadata database {database} cannot be reached ({Describe(innerException)}). Check that PostgreSQL is running there and accepts this user from this host; "
            + (mayHaveCommitted
                ? "the connection broke while a change was being committed, so it was recorded whole or not at all: read it back before repeating it."
                : "nothing was changed, so the same request can be repeated once it is back."),
            innerException)
        {
            IsUnreachable = true,
        };

    /// <summary>PostgreSQL refused an operation for a reason other than the connection (permissions, a full disk, a damaged schema).</summary>
    public static MetadataStoreException Failed(string database, Exception innerException) =>
        new(database, $"the metadata database {database} refused an operation ({Describe(innerException)}); nothing was changed. Check that this user may create and write tables there, and PostgreSQL's log for the cause.", innerException);

    /// <summary>An exception's message and its causes', on one line: what a log line or a CLI error can show.</summary>
    private static string Describe(Exception exception)
    {
        var parts = new List<string>();
        for (var e = exception; e is not null; e = e.InnerException)
        {
            var text = string.Join(' ', e.Message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            if (text.Length > 0 && !parts.Contains(text))
            {
                parts.Add(text);
            }
        }

        return string.Join(": ", parts);
    }
}
