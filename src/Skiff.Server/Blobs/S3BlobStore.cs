using System.Buffers;
using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Server.Blobs;

/// <summary>
/// A blob store in an S3 bucket: <c>PREFIX/blobs/sha256/&lt;hex&gt;</c>, as the file store lays out its folder, and
/// <c>PREFIX/staging/</c> for uploads in flight. A put hashes the content first (SHA-256 for its name, MD5 for
/// S3), uploads it to a new staging key with that MD5, checks what S3 stored against it, and only then copies
/// it to its final key; so a blob under a final key always had its bytes checked, and a crash leaves at most
/// a staging object, which the next open deletes after an hour. Every read is checked against the digest; a blob
/// found damaged is moved to <c>PREFIX/quarantine/sha256/&lt;hex&gt;</c>, missing to the store but kept for a person.
/// </summary>
/// <remarks>
/// Against s3rver (and other S3 look-alikes), AWSSDK.S3 4.1 needs <c>UseChunkEncoding = false</c> and checksums
/// only when required, or it sends aws-chunked framing that the server stores as the object's bytes.
/// Failures of S3 itself (unreachable, too slow, a missing bucket, refused credentials) surface as
/// <see cref="BlobStoreUnavailableException"/>, never as the SDK's own exceptions.
/// </remarks>
internal sealed partial class S3BlobStore : IBlobStore, IDisposable
{
    private const int CopyBufferBytes = 81920;

    // Blobs up to this size are read into memory to be checked; larger ones into a temporary file.
    private const int InMemoryReadBytes = 1024 * 1024;

    // Older than any upload in progress could be, as for the file store's temporary files.
    internal static readonly TimeSpan StaleStagingAge = TimeSpan.FromHours(1);

    // Presence is trusted from memory for this long after a blob was written or touched: gc spares blobs written
    // within BlobStores.SpareRecentBlobs, and the difference covers clocks that disagree. Past it, or for a blob
    // not seen, S3 is asked.
    private static readonly TimeSpan TrustedPresence = BlobStores.SpareRecentBlobs - TimeSpan.FromMinutes(10);

    // Enough for every blob of a large platform; past it the memory starts empty again.
    private const int MaxRemembered = 200_000;

    private readonly IAmazonS3 _s3;

    // Blobs seen stored, with when they were written or last touched: a deploy looks up every package of its
    // environment, which the missing-blobs question of its CLI has just looked up, and an agent's fetch looks up what
    // the deploy did. This store's own deletes forget them; gc on any server leaves them (see TrustedPresence). A
    // blob another server deletes as damaged may still be taken as present here: the agent that fetches it finds
    // it gone and says so.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Digest, DateTimeOffset> _seen = new();
    private readonly string _bucket;
    private readonly string _blobsPrefix;
    private readonly string _stagingPrefix;
    private readonly string _quarantinePrefix;
    private readonly RecentlyVerified _verified;
    private readonly string _temp;
    private readonly Uri? _endpoint;
    private readonly TimeProvider _time;

    private S3BlobStore(IAmazonS3 s3, S3BlobStoreOptions options, string tempDirectory, TimeProvider time)
    {
        _endpoint = options.Endpoint;
        _time = time;
        _s3 = s3;
        _bucket = options.Bucket;
        _blobsPrefix = options.Prefix + "blobs/sha256/";
        _stagingPrefix = options.Prefix + "staging/";
        _quarantinePrefix = options.Prefix + "quarantine/sha256/";
        _verified = new RecentlyVerified(time);
        _temp = tempDirectory;
        Location = options.ToString();
    }

    public string Location { get; }

    /// <summary>
    /// Connects to the bucket, checking that it is there and the credentials work, and deletes staging objects
    /// older than an hour (only a crashed or killed writer leaves them). <paramref name="tempDirectory"/> holds
    /// blobs being checked on their way in or out.
    /// </summary>
    /// <exception cref="BlobStoreUnavailableException">S3 cannot be reached, or refuses the bucket or the credentials.</exception>
    public static async Task<S3BlobStore> OpenAsync(S3BlobStoreOptions options, string tempDirectory, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        Directory.CreateDirectory(tempDirectory);
        var store = new S3BlobStore(CreateClient(options), options, Path.GetFullPath(tempDirectory), time);
        try
        {
            await store.DeleteStaleStagingAsync(time.GetUtcNow() - StaleStagingAge, cancellationToken).ConfigureAwait(false);
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    public void Dispose() => _s3.Dispose();

    public async Task<bool> ContainsAsync(Digest digest, CancellationToken cancellationToken) =>
        await GetWrittenAtAsync(digest, cancellationToken).ConfigureAwait(false) is not null;

    public async Task<long?> GetLengthAsync(Digest digest, CancellationToken cancellationToken) =>
        (await HeadAsync(digest, cancellationToken).ConfigureAwait(false))?.ContentLength;

    public async Task<DateTimeOffset?> GetWrittenAtAsync(Digest digest, CancellationToken cancellationToken)
    {
        if (_seen.TryGetValue(digest, out var seen) && _time.GetUtcNow() - seen < TrustedPresence)
        {
            return seen;
        }

        if ((await HeadAsync(digest, cancellationToken).ConfigureAwait(false))?.LastModified is not { } written)
        {
            _seen.TryRemove(digest, out _);
            return null;
        }

        var writtenAt = new DateTimeOffset(DateTime.SpecifyKind(written, DateTimeKind.Utc));
        Remember(digest, writtenAt);
        return writtenAt;
    }

    private void Remember(Digest digest, DateTimeOffset writtenAt)
    {
        if (_seen.Count >= MaxRemembered)
        {
            _seen.Clear();
        }

        _seen[digest] = writtenAt;
    }

    public Task TouchAsync(Digest digest, CancellationToken cancellationToken) =>
        CallAsync($"touch blob {digest}", async () =>
        {
            try
            {
                // S3 has no "touch": a copy onto itself that replaces the metadata gives the object a new LastModified.
                await _s3.CopyObjectAsync(new CopyObjectRequest
                {
                    SourceBucket = _bucket,
                    SourceKey = BlobKey(digest),
                    DestinationBucket = _bucket,
                    DestinationKey = BlobKey(digest),
                    MetadataDirective = S3MetadataDirective.REPLACE,
                    ContentType = "application/octet-stream",
                }, cancellationToken).ConfigureAwait(false);
                Remember(digest, _time.GetUtcNow());
            }
            catch (AmazonS3Exception e) when (IsNotFound(e))
            {
                // Gone meanwhile; the client's registration will say which blob is missing.
                _seen.TryRemove(digest, out _);
            }

            return true;
        }, cancellationToken);

    public async Task PutAsync(Digest expected, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var staged = await StageLocallyAsync(content, cancellationToken).ConfigureAwait(false);
        await using (staged.ConfigureAwait(false))
        {
            if (staged.Digest != expected)
            {
                throw BlobIntegrityException.ForPut(expected, staged.Digest, Location);
            }

            await UploadAsync(staged, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<Digest> PutAsync(Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var staged = await StageLocallyAsync(content, cancellationToken).ConfigureAwait(false);
        await using (staged.ConfigureAwait(false))
        {
            await UploadAsync(staged, cancellationToken).ConfigureAwait(false);
            return staged.Digest;
        }
    }

    public async Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken)
    {
        var checkedCopy = await CallAsync($"read blob {digest}", async () =>
        {
            GetObjectResponse response;
            try
            {
                response = await _s3.GetObjectAsync(_bucket, BlobKey(digest), cancellationToken).ConfigureAwait(false);
            }
            catch (AmazonS3Exception e) when (IsNotFound(e))
            {
                throw new BlobNotFoundException(digest, Location);
            }

            using (response)
            {
                var length = response.ContentLength;
                Stream copy = length <= InMemoryReadBytes ? new MemoryStream((int)length) : NewTempFile(FileOptions.DeleteOnClose);
                try
                {
                    var (actual, _, read) = await CopyHashingAsync(response.ResponseStream, copy, md5: false, cancellationToken).ConfigureAwait(false);
                    if (read != length)
                    {
                        // The connection ended early: the object may be whole, so it is not discarded.
                        throw new IOException($"the download ended after {read} of {length} bytes");
                    }

                    if (actual != digest)
                    {
                        await MoveToQuarantineAsync(digest, cancellationToken).ConfigureAwait(false);
                        throw BlobIntegrityException.ForStoredBlob(digest, actual, Location);
                    }

                    _verified.Remember(digest);
                    copy.Position = 0;
                    return copy;
                }
                catch
                {
                    await copy.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }
        }, cancellationToken).ConfigureAwait(false);
        return checkedCopy;
    }

    public async IAsyncEnumerable<Digest> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? continuation = null;
        do
        {
            var page = await ListPageAsync(_blobsPrefix, continuation, cancellationToken).ConfigureAwait(false);
            foreach (var entry in page.S3Objects ?? [])
            {
                // A key with more path below the prefix, or any other name, fails to parse and is skipped.
                if (Digest.TryParseHex(entry.Key[_blobsPrefix.Length..], out var digest))
                {
                    yield return digest;
                }
            }

            continuation = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (continuation is not null);
    }

    /// <summary>How many blobs the bucket holds and their bytes, from its listing: one request per 1,000 blobs, none read.</summary>
    public async Task<(long Blobs, long Bytes)> MeasureAsync(CancellationToken cancellationToken)
    {
        long blobs = 0, bytes = 0;
        string? continuation = null;
        do
        {
            var page = await ListPageAsync(_blobsPrefix, continuation, cancellationToken).ConfigureAwait(false);
            foreach (var entry in page.S3Objects ?? [])
            {
                if (Digest.TryParseHex(entry.Key[_blobsPrefix.Length..], out _))
                {
                    blobs++;
                    bytes += entry.Size ?? 0;
                }
            }

            continuation = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (continuation is not null);
        return (blobs, bytes);
    }

    public async Task<bool> VerifyAsync(Digest digest, TimeSpan trust, CancellationToken cancellationToken)
    {
        if (_verified.Within(digest, trust))
        {
            return false;
        }

        var stream = await OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
        await stream.DisposeAsync().ConfigureAwait(false);
        return true;
    }

    public async Task<bool> QuarantineAsync(Digest digest, CancellationToken cancellationToken) =>
        await CallAsync($"quarantine blob {digest}", () => MoveToQuarantineAsync(digest, cancellationToken), cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<Digest> ListQuarantinedAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? continuation = null;
        do
        {
            var page = await ListPageAsync(_quarantinePrefix, continuation, cancellationToken).ConfigureAwait(false);
            foreach (var entry in page.S3Objects ?? [])
            {
                if (Digest.TryParseHex(entry.Key[_quarantinePrefix.Length..], out var digest))
                {
                    yield return digest;
                }
            }

            continuation = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (continuation is not null);
    }

    /// <summary>S3 has no rename: a copy to the quarantine prefix, then a delete of the blob's key.</summary>
    private async Task<bool> MoveToQuarantineAsync(Digest digest, CancellationToken cancellationToken)
    {
        _seen.TryRemove(digest, out _);
        _verified.Forget(digest);
        try
        {
            await _s3.CopyObjectAsync(new CopyObjectRequest
            {
                SourceBucket = _bucket,
                SourceKey = BlobKey(digest),
                DestinationBucket = _bucket,
                DestinationKey = _quarantinePrefix + digest.Hex,
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (IsNotFound(e))
        {
            return false;
        }

        await _s3.DeleteObjectAsync(_bucket, BlobKey(digest), cancellationToken).ConfigureAwait(false);
        return true;
    }

    public async Task<bool> DeleteAsync(Digest digest, CancellationToken cancellationToken)
    {
        _seen.TryRemove(digest, out _);
        _verified.Forget(digest);

        // S3 deletes say nothing about whether the key existed.
        if (await HeadAsync(digest, cancellationToken).ConfigureAwait(false) is null)
        {
            return false;
        }

        await CallAsync($"delete blob {digest}", () => _s3.DeleteObjectAsync(_bucket, BlobKey(digest), cancellationToken), cancellationToken).ConfigureAwait(false);
        return true;
    }

    private string BlobKey(Digest digest) => _blobsPrefix + digest.Hex;

    private static AmazonS3Client CreateClient(S3BlobStoreOptions options)
    {
        var config = new AmazonS3Config
        {
            ForcePathStyle = true,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            Timeout = options.Timeout,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            // S3 asks clients to retry its 500s and 503s; s3rver answers concurrent writes with 500s now and then, and
            // two retries were not always enough under load. Four, with the SDK's backoff, add about a second to a
            // store that is really down.
            MaxErrorRetry = 4,
        };
        if (options.Endpoint is null)
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(options.Region);
        }
        else
        {
            config.ServiceURL = options.Endpoint.ToString();
            config.AuthenticationRegion = options.Region;
        }

        AWSCredentials credentials = options.SessionToken is null
            ? new BasicAWSCredentials(options.AccessKey, options.SecretKey)
            : new SessionAWSCredentials(options.AccessKey, options.SecretKey, options.SessionToken);
        var client = new AmazonS3Client(credentials, config);

        // The SDK escapes every '/' of x-amz-copy-source, the bucket's separator too; S3 unescapes it, s3rver
        // (decodeURI) does not and looks for a bucket named "bucket%2Fkey". Unescaped slashes suit both.
        client.BeforeRequestEvent += (_, e) =>
        {
            if (e is WebServiceRequestEventArgs request && request.Headers.TryGetValue("x-amz-copy-source", out var source))
            {
                request.Headers["x-amz-copy-source"] = source.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
            }
        };
        return client;
    }

    /// <summary>
    /// Hashes the content where it is when it can be read twice (the server's checked uploads are files),
    /// else copies it into a temporary file on the way.
    /// </summary>
    private async Task<StagedContent> StageLocallyAsync(Stream content, CancellationToken cancellationToken)
    {
        if (content.CanSeek)
        {
            var start = content.Position;
            var (digest, md5, length) = await CopyHashingAsync(content, destination: null, md5: true, cancellationToken).ConfigureAwait(false);
            content.Position = start;
            return new StagedContent(content, start, length, digest, md5!, ownsStream: false);
        }

        var file = NewTempFile(FileOptions.DeleteOnClose);
        try
        {
            var (digest, md5, length) = await CopyHashingAsync(content, file, md5: true, cancellationToken).ConfigureAwait(false);
            file.Position = 0;
            return new StagedContent(file, 0, length, digest, md5!, ownsStream: true);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Staging key, check, copy to the final key, delete the staging key. Skipped when the blob is stored.</summary>
    private async Task UploadAsync(StagedContent staged, CancellationToken cancellationToken)
    {
        if (await HeadAsync(staged.Digest, cancellationToken).ConfigureAwait(false) is not null)
        {
            return;
        }

        var stagingKey = $"{_stagingPrefix}{Guid.NewGuid():N}";
        try
        {
            await CallAsync($"store blob {staged.Digest} (nothing was stored)", async () =>
            {
                staged.Stream.Position = staged.Start;
                var response = await _s3.PutObjectAsync(new PutObjectRequest
                {
                    BucketName = _bucket,
                    Key = stagingKey,
                    InputStream = staged.Stream,
                    AutoCloseStream = false,
                    AutoResetStreamPosition = false,
                    UseChunkEncoding = false,
                    ContentType = "application/octet-stream",

                    // S3 checks the bytes it receives against this and refuses a mismatch; s3rver does not check.
                    MD5Digest = Convert.ToBase64String(staged.Md5),
                }, cancellationToken).ConfigureAwait(false);
                if (!await StagedIntactAsync(stagingKey, response.ETag, staged, cancellationToken).ConfigureAwait(false))
                {
                    throw new IOException("the bytes it stored were not the bytes sent");
                }

                try
                {
                    await _s3.CopyObjectAsync(new CopyObjectRequest
                    {
                        SourceBucket = _bucket,
                        SourceKey = stagingKey,
                        DestinationBucket = _bucket,
                        DestinationKey = BlobKey(staged.Digest),
                    }, cancellationToken).ConfigureAwait(false);
                    _verified.Remember(staged.Digest);
                }
                catch (AmazonS3Exception) when (!cancellationToken.IsCancellationRequested)
                {
                    // Two writers of one blob at once: a store may fail the copy that lands on a key being written
                    // (s3rver answers 500). If the blob is there now, another put stored the same name, and so the
                    // same bytes (every read checks them); else the failure stands.
                    long? stored = null;
                    try
                    {
                        stored = (await _s3.GetObjectMetadataAsync(_bucket, BlobKey(staged.Digest), cancellationToken).ConfigureAwait(false)).ContentLength;
                    }
                    catch (AmazonS3Exception)
                    {
                        // Not there (or not answering): the copy's own failure is the one to report.
                    }

                    if (stored != staged.Length)
                    {
                        throw;
                    }
                }

                return true;
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await DeleteStagingAsync(stagingKey).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Whether the staging object holds exactly the staged bytes. A single-part upload's ETag is its MD5,
    /// except with KMS encryption; then the object is read back and hashed.
    /// </summary>
    private async Task<bool> StagedIntactAsync(string stagingKey, string? etag, StagedContent staged, CancellationToken cancellationToken)
    {
        if (string.Equals(etag?.Trim('"'), Convert.ToHexStringLower(staged.Md5), StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        using var response = await _s3.GetObjectAsync(_bucket, stagingKey, cancellationToken).ConfigureAwait(false);
        var (digest, _, length) = await CopyHashingAsync(response.ResponseStream, destination: null, md5: false, cancellationToken).ConfigureAwait(false);
        return digest == staged.Digest && length == staged.Length;
    }

    private async Task DeleteStagingAsync(string stagingKey)
    {
        try
        {
            // Not the caller's token: a canceled put still cleans up after itself.
            await _s3.DeleteObjectAsync(_bucket, stagingKey).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e))
        {
            // The next open deletes stale staging objects.
        }
    }

    internal async Task DeleteStaleStagingAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        string? continuation = null;
        do
        {
            var page = await ListPageAsync(_stagingPrefix, continuation, cancellationToken).ConfigureAwait(false);
            foreach (var entry in page.S3Objects ?? [])
            {
                if (entry.LastModified is { } written && new DateTimeOffset(DateTime.SpecifyKind(written, DateTimeKind.Utc)) < before)
                {
                    await DeleteStagingAsync(entry.Key).ConfigureAwait(false);
                }
            }

            continuation = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (continuation is not null);
    }

    private Task<ListObjectsV2Response> ListPageAsync(string prefix, string? continuation, CancellationToken cancellationToken) =>
        CallAsync("list its blobs", () => _s3.ListObjectsV2Async(new ListObjectsV2Request
        {
            BucketName = _bucket,
            Prefix = prefix,
            ContinuationToken = continuation,
        }, cancellationToken), cancellationToken);

    private Task<GetObjectMetadataResponse?> HeadAsync(Digest digest, CancellationToken cancellationToken) =>
        CallAsync<GetObjectMetadataResponse?>($"look up blob {digest}", async () =>
        {
            try
            {
                return await _s3.GetObjectMetadataAsync(_bucket, BlobKey(digest), cancellationToken).ConfigureAwait(false);
            }
            catch (AmazonS3Exception e) when (IsNotFound(e))
            {
                return null;
            }
        }, cancellationToken);

    /// <summary>Runs one conversation with S3 and turns its failures into <see cref="BlobStoreUnavailableException"/>.</summary>
    private async Task<T> CallAsync<T>(string action, Func<Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            throw new BlobStoreUnavailableException(Location, action, "it did not answer in time", e);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchBucket")
        {
            throw new BlobStoreUnavailableException(Location, action, $"bucket '{_bucket}' does not exist there; create it, or point --blobs at one that does", e);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode is "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "AccessDenied" || e.StatusCode is HttpStatusCode.Forbidden)
        {
            throw new BlobStoreUnavailableException(Location, action, $"it refused the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY ({e.ErrorCode}: {e.Message})", e);
        }
        catch (AmazonS3Exception e) when ((int)e.StatusCode is >= 400 and < 500 && (string.IsNullOrEmpty(e.ErrorCode) || e.ErrorCode == e.StatusCode.ToString()))
        {
            // S3 names its errors (NoSuchKey, AccessDenied, ...); a bare status is some other service at that address.
            throw new BlobStoreUnavailableException(Location, action, $"it answered HTTP {(int)e.StatusCode} ({e.StatusCode}) with no S3 error: check that the endpoint is an S3 server, at its port, and not another service", e);
        }
        catch (Exception e) when (IsStoreFailure(e))
        {
            throw new BlobStoreUnavailableException(Location, action, Reason(e), e);
        }
    }

    private static bool IsStoreFailure(Exception e) =>
        e is AmazonServiceException or AmazonClientException or HttpRequestException or IOException or System.Net.Sockets.SocketException
        or OperationCanceledException or TimeoutException;

    private static string Reason(Exception e)
    {
        var innermost = e;
        while (innermost.InnerException is not null)
        {
            innermost = innermost.InnerException;
        }

        return innermost == e || innermost.Message == e.Message ? e.Message.TrimEnd('.') : $"{e.Message.TrimEnd('.')} ({innermost.Message.TrimEnd('.')})";
    }

    private static bool IsNotFound(AmazonS3Exception e) =>
        e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode != "NoSuchBucket";

    private FileStream NewTempFile(FileOptions options) =>
        new(Path.Combine(_temp, $"{Guid.NewGuid():N}.tmp"), new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            Options = FileOptions.Asynchronous | options,
        });

    /// <summary>Reads <paramref name="source"/> to its end, hashing it, and writes it to <paramref name="destination"/> when given.</summary>
    private static async Task<(Digest Digest, byte[]? Md5, long Length)> CopyHashingAsync(Stream source, Stream? destination, bool md5, CancellationToken cancellationToken)
    {
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        // MD5 only because S3 names and checks single-part objects by it.
#pragma warning disable CA5351
        using var md5Hash = md5 ? IncrementalHash.CreateHash(HashAlgorithmName.MD5) : null;
#pragma warning restore CA5351
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        try
        {
            long length = 0;
            int read;
            while ((read = await source.ReadAsync(buffer.AsMemory(0, CopyBufferBytes), cancellationToken).ConfigureAwait(false)) > 0)
            {
                sha256.AppendData(buffer, 0, read);
                md5Hash?.AppendData(buffer, 0, read);
                length += read;
                if (destination is not null)
                {
                    await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }
            }

            return (Digest.FromHash(sha256.GetHashAndReset()), md5Hash?.GetHashAndReset(), length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Content hashed and ready to upload: the caller's seekable stream, or a temporary file this store owns.</summary>
    private sealed class StagedContent(Stream stream, long start, long length, Digest digest, byte[] md5, bool ownsStream) : IAsyncDisposable
    {
        public Stream Stream { get; } = stream;

        public long Start { get; } = start;

        public long Length { get; } = length;

        public Digest Digest { get; } = digest;

        public byte[] Md5 { get; } = md5;

        public ValueTask DisposeAsync() => ownsStream ? Stream.DisposeAsync() : ValueTask.CompletedTask;
    }
}
