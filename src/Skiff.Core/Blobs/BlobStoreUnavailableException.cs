namespace Skiff.Core.Blobs;

/// <summary>
/// A remote blob store (S3) could not be reached, answered too slowly, or refused the request (a missing bucket,
/// wrong credentials). Whatever the call was, nothing was recorded as stored that is not in the store.
/// </summary>
internal sealed class BlobStoreUnavailableException(string storeLocation, string action, string reason, Exception? innerException = null)
    : SkiffException($"the blob store {storeLocation} could not {action}: {reason}. Check that it runs and is reachable there and that the bucket and credentials are right, then try again.", innerException)
{
    /// <summary>Where the store is: the bucket, prefix and endpoint.</summary>
    public string StoreLocation { get; } = storeLocation;
}
