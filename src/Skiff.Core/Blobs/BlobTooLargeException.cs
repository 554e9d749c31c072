namespace Skiff.Core.Blobs;

/// <summary>A blob offered to a store is larger than the store accepts.</summary>
internal sealed class BlobTooLargeException(Digest digest, long maxBytes)
    : SkiffException($"blob {digest} is over {maxBytes} bytes, the most this store accepts; nothing was stored.");
