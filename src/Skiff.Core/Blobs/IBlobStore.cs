namespace Skiff.Core.Blobs;

/// <summary>
/// A content-addressed store of blobs named by their <see cref="Digest"/>. Implemented on a local
/// folder (<see cref="FileBlobStore"/>) and on S3-compatible object storage. Nothing leaves a store
/// unverified and nothing enters one unverified: a reader never sees bytes that do not match their name.
/// </summary>
internal interface IBlobStore : IBlobSource
{
    /// <summary>Where the store is, for people and error messages: a folder, or a bucket and its endpoint.</summary>
    string Location { get; }

    /// <summary>Whether a blob with this digest is stored. Says nothing about whether it is intact.</summary>
    Task<bool> ContainsAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>
    /// Stores <paramref name="content"/> as <paramref name="expected"/>. The content is always read to
    /// its end and hashed, even when the blob is already stored, so a wrong upload is reported either way.
    /// </summary>
    /// <exception cref="BlobIntegrityException">The content does not hash to <paramref name="expected"/>;
    /// the store is unchanged.</exception>
    Task PutAsync(Digest expected, Stream content, CancellationToken cancellationToken);

    /// <summary>Stores <paramref name="content"/> and returns its digest, computed while it is written.</summary>
    Task<Digest> PutAsync(Stream content, CancellationToken cancellationToken);

    /// <summary>
    /// Opens a stored blob for reading, positioned at its start, after checking its bytes against its
    /// digest. The caller disposes the stream.
    /// </summary>
    /// <exception cref="BlobNotFoundException">No blob with this digest is stored.</exception>
    /// <exception cref="BlobIntegrityException">The stored bytes do not match the digest; the damaged blob
    /// was quarantined (<see cref="QuarantineAsync"/>) and must be put again.</exception>
    new Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>
    /// Checks a stored blob's bytes against its digest, unless this store hashed them (at a put, a checked read or an
    /// earlier check) less than <paramref name="trust"/> ago; <see cref="TimeSpan.Zero"/> always hashes. Returns whether
    /// it hashed them now.
    /// </summary>
    /// <exception cref="BlobNotFoundException">No blob with this digest is stored.</exception>
    /// <exception cref="BlobIntegrityException">The stored bytes do not match the digest; the blob was quarantined.</exception>
    Task<bool> VerifyAsync(Digest digest, TimeSpan trust, CancellationToken cancellationToken);

    /// <summary>
    /// Moves a damaged blob aside, out of the store's blobs but kept for inspection (a file store's <c>quarantine/</c>
    /// folder, an S3 store's <c>quarantine/</c> key prefix): from then on it is missing, so the next deployment that
    /// needs it uploads it again. Returns whether it was there.
    /// </summary>
    Task<bool> QuarantineAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>Every blob ever quarantined and not yet removed from the quarantine by hand, in no particular order.</summary>
    IAsyncEnumerable<Digest> ListQuarantinedAsync(CancellationToken cancellationToken);

    /// <summary>The size of a stored blob in bytes, or null when it is not stored.</summary>
    Task<long?> GetLengthAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>Every stored blob, in no particular order. Anything in the store not named like a digest is skipped.</summary>
    IAsyncEnumerable<Digest> ListAsync(CancellationToken cancellationToken);

    /// <summary>Deletes a blob; returns whether it was there.</summary>
    Task<bool> DeleteAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>When a stored blob was written or last touched (<see cref="TouchAsync"/>), or null when it is not stored.</summary>
    Task<DateTimeOffset?> GetWrittenAtAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>
    /// Marks a stored blob as written now, so a collection that spares recent blobs spares it too: a client
    /// just told the blob is present may be about to register a release that names it. A blob that is not
    /// stored is left so.
    /// </summary>
    Task TouchAsync(Digest digest, CancellationToken cancellationToken);
}
