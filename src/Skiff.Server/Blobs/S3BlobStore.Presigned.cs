using Amazon.S3;
using Amazon.S3.Model;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Server.Blobs;

/// <summary>
/// Pre-signed URLs, so blob bytes go between clients or agents and S3 directly, never through a server.
/// A client PUTs a blob to a staging key of its own and then asks for it to be committed; only the commit,
/// after checking the bytes, puts anything under a final key. Readers GET final keys and check what they read.
/// </summary>
internal sealed partial class S3BlobStore
{
    /// <summary>
    /// How long a pre-signed URL works: long enough to start the transfers of one deploy (a transfer that has
    /// started may take longer), short enough that a URL seen in a log is soon worthless.
    /// </summary>
    public static readonly TimeSpan PresignedUrlLifetime = TimeSpan.FromMinutes(15);

    /// <summary>Uploads up to this size are committed from the server's memory (<see cref="CommitSmallAsync"/>).</summary>
    internal const int SmallUpload = 1024 * 1024;

    /// <summary>
    /// A new staging key and a URL that lets whoever holds it PUT one object there, without credentials. The
    /// upload's <see cref="PresignedUpload.Id"/> names it to <see cref="CommitUploadAsync"/>.
    /// </summary>
    public async Task<PresignedUpload> PresignUploadAsync(CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N");
        var expires = _time.GetUtcNow() + PresignedUrlLifetime;
        return new PresignedUpload(id, await PresignAsync(StagingKey(id), HttpVerb.PUT, expires, cancellationToken).ConfigureAwait(false), expires);
    }

    /// <summary>A URL that lets whoever holds it GET a stored blob, without credentials. The reader checks the bytes against the digest.</summary>
    public Task<Uri> PresignDownloadAsync(Digest digest, CancellationToken cancellationToken) =>
        PresignAsync(BlobKey(digest), HttpVerb.GET, _time.GetUtcNow() + PresignedUrlLifetime, cancellationToken);

    /// <summary>
    /// Moves a pre-signed upload into the store, after <paramref name="check"/> has read and accepted its bytes.
    /// The upload is first copied (inside S3) to a key the uploader holds no URL for, and that copy is what is
    /// checked and copied on: a client that PUTs other bytes to its URL meanwhile changes nothing. Whatever
    /// happens, neither the staging object nor the copy is left behind.
    /// </summary>
    /// <returns>Whether the blob was new; an upload of a blob already stored is checked all the same.</returns>
    /// <exception cref="StagedUploadNotFoundException">Nothing was uploaded under <paramref name="uploadId"/>.</exception>
    /// <exception cref="BlobStoreUnavailableException">S3 cannot be reached, or refuses.</exception>
    /// <remarks>Whatever <paramref name="check"/> throws (the bytes are not the blob) passes through; nothing is stored then.</remarks>
    public async Task<bool> CommitUploadAsync(Digest expected, string uploadId, Func<Stream, CancellationToken, Task> check, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(check);
        if (!Guid.TryParseExact(uploadId, "N", out _))
        {
            throw new StagedUploadNotFoundException(expected, uploadId, Location);
        }

        var stagingKey = StagingKey(uploadId);
        if (await CommitSmallAsync(expected, stagingKey, check, cancellationToken).ConfigureAwait(false) is { } small)
        {
            if (small)
            {
                _verified.Remember(expected);
            }

            return small;
        }

        var checkingKey = stagingKey + ".checking";
        try
        {
            var found = await CallAsync($"take in the upload of blob {expected} (nothing was stored)", async () =>
            {
                try
                {
                    await _s3.CopyObjectAsync(new CopyObjectRequest
                    {
                        SourceBucket = _bucket,
                        SourceKey = stagingKey,
                        DestinationBucket = _bucket,
                        DestinationKey = checkingKey,
                    }, cancellationToken).ConfigureAwait(false);
                    return true;
                }
                catch (AmazonS3Exception e) when (IsNotFound(e))
                {
                    return false;
                }
            }, cancellationToken).ConfigureAwait(false);
            await DeleteStagingAsync(stagingKey).ConfigureAwait(false);
            if (!found)
            {
                throw new StagedUploadNotFoundException(expected, uploadId, Location);
            }

            await CallAsync($"read the upload of blob {expected} to check it (nothing was stored)", async () =>
            {
                using var response = await _s3.GetObjectAsync(_bucket, checkingKey, cancellationToken).ConfigureAwait(false);
                await check(response.ResponseStream, cancellationToken).ConfigureAwait(false);
                return true;
            }, cancellationToken).ConfigureAwait(false);

            if (await HeadAsync(expected, cancellationToken).ConfigureAwait(false) is not null)
            {
                return false;
            }

            await CallAsync($"store blob {expected} (nothing was stored)", () => _s3.CopyObjectAsync(new CopyObjectRequest
            {
                SourceBucket = _bucket,
                SourceKey = checkingKey,
                DestinationBucket = _bucket,
                DestinationKey = BlobKey(expected),
            }, cancellationToken), cancellationToken).ConfigureAwait(false);
            // The bytes checked are the bytes copied, inside S3.
            _verified.Remember(expected);
            return true;
        }
        finally
        {
            await DeleteStagingAsync(checkingKey).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The commit of an upload of at most <see cref="SmallUpload"/> bytes (manifests, and the source of most
    /// projects: what a one-line change uploads), in two round trips instead of six: its bytes are read once, into
    /// memory, and checked there, and those very bytes are written to the final key (with their MD5, which S3
    /// checks) while the staging key is deleted. Being the checked bytes, they need no copy the uploader cannot
    /// touch. Null, having changed nothing, when the upload is larger: it is committed by copies inside S3.
    /// </summary>
    private async Task<bool?> CommitSmallAsync(Digest expected, string stagingKey, Func<Stream, CancellationToken, Task> check, CancellationToken cancellationToken)
    {
        var stored = HeadAsync(expected, cancellationToken);
        var (found, bytes) = await CallAsync($"read the upload of blob {expected} to check it (nothing was stored)", async () =>
        {
            try
            {
                using var response = await _s3.GetObjectAsync(_bucket, stagingKey, cancellationToken).ConfigureAwait(false);
                if (response.ContentLength > SmallUpload)
                {
                    return (true, null);
                }

                using var buffer = new MemoryStream((int)response.ContentLength);
                await response.ResponseStream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
                return (true, buffer.ToArray());
            }
            catch (AmazonS3Exception e) when (IsNotFound(e))
            {
                return (false, (byte[]?)null);
            }
        }, cancellationToken).ConfigureAwait(false);
        if (!found || bytes is null)
        {
            await stored.ConfigureAwait(false);
            return found ? null : throw new StagedUploadNotFoundException(expected, StagingKeyId(stagingKey), Location);
        }

        try
        {
            await check(new MemoryStream(bytes, writable: false), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await DeleteStagingAsync(stagingKey).ConfigureAwait(false);
            throw;
        }

        var deleted = DeleteStagingAsync(stagingKey);
        if (await stored.ConfigureAwait(false) is not null)
        {
            await deleted.ConfigureAwait(false);
            return false;
        }

        var md5 = System.Security.Cryptography.MD5.HashData(bytes);
        await CallAsync($"store blob {expected} (nothing was stored)", async () =>
        {
            var response = await _s3.PutObjectAsync(new PutObjectRequest
            {
                BucketName = _bucket,
                Key = BlobKey(expected),
                InputStream = new MemoryStream(bytes, writable: false),
                UseChunkEncoding = false,
                ContentType = "application/octet-stream",
                MD5Digest = Convert.ToBase64String(md5),
            }, cancellationToken).ConfigureAwait(false);
            if (!string.Equals(response.ETag?.Trim('"'), Convert.ToHexStringLower(md5), StringComparison.OrdinalIgnoreCase))
            {
                // A store that does not check Content-MD5 stored other bytes than were sent.
                await _s3.DeleteObjectAsync(_bucket, BlobKey(expected), CancellationToken.None).ConfigureAwait(false);
                throw new IOException("the bytes it stored were not the bytes sent");
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
        await deleted.ConfigureAwait(false);
        return true;
    }

    private string StagingKey(string uploadId) => _stagingPrefix + uploadId;

    private string StagingKeyId(string stagingKey) => stagingKey[_stagingPrefix.Length..];

    private Task<Uri> PresignAsync(string key, HttpVerb verb, DateTimeOffset expires, CancellationToken cancellationToken) =>
        CallAsync($"sign a URL for {key}", async () => new Uri(await _s3.GetPreSignedURLAsync(new GetPreSignedUrlRequest
        {
            BucketName = _bucket,
            Key = key,
            Verb = verb,
            Expires = expires.UtcDateTime,

            // The SDK signs https URLs unless told otherwise; an http endpoint (s3rver, MinIO inside a cluster) needs http ones.
            Protocol = _endpoint?.Scheme == Uri.UriSchemeHttp ? Protocol.HTTP : Protocol.HTTPS,
        }).ConfigureAwait(false)), cancellationToken);
}

/// <summary>Where a client may PUT one blob's bytes (<see cref="Url"/>, until <see cref="Expires"/>), and the id that commits them.</summary>
internal sealed record PresignedUpload(string Id, Uri Url, DateTimeOffset Expires);

/// <summary>A commit named an upload that is not (or no longer) waiting in the store.</summary>
internal sealed class StagedUploadNotFoundException(Digest digest, string uploadId, string storeLocation)
    : SkiffException($"no upload '{uploadId}' of blob {digest} is waiting in the blob store {storeLocation}: PUT its bytes to the URL that came with that id (it works for {(int)S3BlobStore.PresignedUrlLifetime.TotalMinutes} minutes), then commit it again. Nothing was stored.");
