namespace Skiff.Core.Blobs;

/// <summary>Bytes that were meant to be a blob did not hash to its digest.</summary>
internal sealed class BlobIntegrityException : SkiffException
{
    private BlobIntegrityException(Digest expected, Digest actual, string message)
        : base(message)
    {
        Expected = expected;
        Actual = actual;
    }

    /// <summary>The digest the bytes should have had.</summary>
    public Digest Expected { get; }

    /// <summary>The digest they had.</summary>
    public Digest Actual { get; }

    /// <summary>Content offered to a store did not match the digest it was offered under.</summary>
    public static BlobIntegrityException ForPut(Digest expected, Digest actual, string storeLocation) =>
        new(expected, actual, $"content put as blob {expected} into the store at {storeLocation} did not match that digest (got {actual}); nothing was stored. Check what produced the content and put it again.");

    /// <summary>A stored blob was damaged; the store moved it to its quarantine.</summary>
    public static BlobIntegrityException ForStoredBlob(Digest expected, Digest actual, string storeLocation) =>
        new(expected, actual, $"blob {expected} in the store at {storeLocation} did not match its digest (got {actual}); it was quarantined and must be put again.");
}
