namespace Skiff.Core.Blobs;

/// <summary>
/// Somewhere blobs can be read from: a store, or a remote one reached over HTTP. A source may hand out
/// bytes that were damaged on the way; whoever puts them into a store verifies them there.
/// </summary>
internal interface IBlobSource
{
    /// <summary>Opens a blob for reading. The caller disposes the stream.</summary>
    /// <exception cref="BlobNotFoundException">The source has no blob with this digest.</exception>
    Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken);
}
