using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Agent.Blobs;

/// <summary>
/// The agent's blob cache: a local store in front of a blob source (the server's store, S3). A blob is
/// fetched once, verified as it is put, and read locally from then on; a cached blob found damaged is
/// quarantined by the local store and fetched again.
/// </summary>
internal sealed class FetchingBlobStore(FileBlobStore local, IBlobSource source) : IBlobStore
{
    private long _fetchedBlobs;
    private long _fetchedBytes;

    /// <summary>Blobs fetched from the source since this store was made.</summary>
    public long FetchedBlobs => Interlocked.Read(ref _fetchedBlobs);

    /// <summary>Bytes fetched from the source since this store was made.</summary>
    public long FetchedBytes => Interlocked.Read(ref _fetchedBytes);

    public string Location => local.Location;

    public Task<bool> ContainsAsync(Digest digest, CancellationToken cancellationToken) => local.ContainsAsync(digest, cancellationToken);

    public Task PutAsync(Digest expected, Stream content, CancellationToken cancellationToken) => local.PutAsync(expected, content, cancellationToken);

    public Task<Digest> PutAsync(Stream content, CancellationToken cancellationToken) => local.PutAsync(content, cancellationToken);

    public Task<long?> GetLengthAsync(Digest digest, CancellationToken cancellationToken) => local.GetLengthAsync(digest, cancellationToken);

    public IAsyncEnumerable<Digest> ListAsync(CancellationToken cancellationToken) => local.ListAsync(cancellationToken);

    public Task<bool> DeleteAsync(Digest digest, CancellationToken cancellationToken) => local.DeleteAsync(digest, cancellationToken);

    public Task<DateTimeOffset?> GetWrittenAtAsync(Digest digest, CancellationToken cancellationToken) => local.GetWrittenAtAsync(digest, cancellationToken);

    public Task TouchAsync(Digest digest, CancellationToken cancellationToken) => local.TouchAsync(digest, cancellationToken);

    public Task<bool> VerifyAsync(Digest digest, TimeSpan trust, CancellationToken cancellationToken) => local.VerifyAsync(digest, trust, cancellationToken);

    public Task<bool> QuarantineAsync(Digest digest, CancellationToken cancellationToken) => local.QuarantineAsync(digest, cancellationToken);

    public IAsyncEnumerable<Digest> ListQuarantinedAsync(CancellationToken cancellationToken) => local.ListQuarantinedAsync(cancellationToken);

    /// <summary>Makes sure the blob is in the local cache, fetching it when it is not.</summary>
    public async Task EnsureAsync(Digest digest, CancellationToken cancellationToken)
    {
        if (!await local.ContainsAsync(digest, cancellationToken).ConfigureAwait(false))
        {
            await FetchAsync(digest, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken)
    {
        try
        {
            return await local.OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is BlobNotFoundException or BlobIntegrityException)
        {
            // Not cached yet, or cached but damaged (the local store has just discarded it): fetch it again.
            await FetchAsync(digest, cancellationToken).ConfigureAwait(false);
            return await local.OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task FetchAsync(Digest digest, CancellationToken cancellationToken)
    {
        var stream = await source.OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            await local.PutAsync(digest, stream, cancellationToken).ConfigureAwait(false);
        }

        Interlocked.Increment(ref _fetchedBlobs);
        Interlocked.Add(ref _fetchedBytes, await local.GetLengthAsync(digest, cancellationToken).ConfigureAwait(false) ?? 0);
    }
}
