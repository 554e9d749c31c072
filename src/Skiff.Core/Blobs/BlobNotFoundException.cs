namespace Skiff.Core.Blobs;

/// <summary>A blob was asked for that the store does not have.</summary>
internal sealed class BlobNotFoundException(Digest digest, string storeLocation)
    : SkiffException($"blob {digest} is not in the store at {storeLocation}. Put it again (a deploy uploads every blob the store lacks) and retry.")
{
    /// <summary>The blob that was asked for.</summary>
    public Digest Digest { get; } = digest;

    /// <summary>Where the store is, for people: a folder or a bucket URL.</summary>
    public string StoreLocation { get; } = storeLocation;
}
