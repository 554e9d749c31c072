using Microsoft.AspNetCore.Http.HttpResults;
using Skiff.Client.Api;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Server.Blobs;
using Skiff.Server.Hosting;

namespace Skiff.Server.Api;

/// <summary>
/// Blob upload (checked by <see cref="UploadedBlobs"/> before it enters the store) and download. With blobs in S3
/// the bytes do not pass through here: uploads go to pre-signed URLs and are committed after the same checks,
/// downloads are redirected to pre-signed URLs.
/// </summary>
internal static class BlobEndpoints
{
    // A blob written or touched this recently is spared by gc for most of its hour anyway; touching it again
    // would cost an S3 copy per blob on every deploy.
    private static readonly TimeSpan TouchAfter = TimeSpan.FromMinutes(10);

    public static void Map(IEndpointRouteBuilder api, IBlobStore blobs, ServerOptions options, TimeProvider time)
    {
        api.MapPost("/blobs/missing", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            var body = await Requests.ReadAsync(request, options.MaxJsonBytes, ApiJson.Default.MissingBlobsRequest, cancellationToken).ConfigureAwait(false);
            var digests = (body.Digests ?? throw new BadRequestException("the request needs \"digests\": an array of sha256:… strings."))
                .Select(text => Digest.Parse(text ?? ""))
                .Distinct()
                .ToList();
            var written = await BlobStores.WrittenAtAsync(blobs, digests, cancellationToken).ConfigureAwait(false);
            var missing = digests.Where(digest => written[digest] is null).ToList();
            await Parallel.ForEachAsync(
                digests.Where(digest => written[digest] < time.GetUtcNow() - TouchAfter),
                new ParallelOptions { MaxDegreeOfParallelism = BlobStores.LookupsAtOnce, CancellationToken = cancellationToken },
                async (digest, ct) => await blobs.TouchAsync(digest, ct).ConfigureAwait(false)).ConfigureAwait(false);

            Dictionary<string, BlobUpload>? uploads = null;
            if (blobs is S3BlobStore s3)
            {
                // Scale-out: the client PUTs each blob to S3 itself and then commits it (POST /blobs/{digest}/commit).
                uploads = new Dictionary<string, BlobUpload>(StringComparer.Ordinal);
                foreach (var digest in missing)
                {
                    var upload = await s3.PresignUploadAsync(cancellationToken).ConfigureAwait(false);
                    uploads[digest.ToString()] = new BlobUpload(upload.Id, upload.Url.ToString(), upload.Expires);
                }
            }

            return TypedResults.Ok(new MissingBlobs([.. missing.Select(d => d.ToString())], uploads));
        })
            .Accepts<MissingBlobsRequest>("application/json")
            .Fails(400, 413, 503)
            .WithSummary("Which of these blobs the server lacks; with blobs in S3, also where to upload each.");

        api.MapPost("/blobs/{digest}/commit", async Task<Results<Created<StoredBlob>, Ok<StoredBlob>>> (string digest, HttpRequest request, CancellationToken cancellationToken) =>
        {
            var expected = Digest.Parse(digest);
            if (blobs is not S3BlobStore s3)
            {
                throw new BadRequestException($"this server keeps blobs in a folder, with nothing to commit: upload blob {expected} with PUT /api/v1/blobs/{expected}.");
            }

            var body = await Requests.ReadAsync(request, options.MaxJsonBytes, ApiJson.Default.BlobCommitRequest, cancellationToken).ConfigureAwait(false);
            var upload = Requests.Required(body.Upload, "upload");

            // The same checks as an upload through the server (digest, archive safety, canonical manifests), on
            // the bytes S3 holds; only then does the blob get its final key.
            var stored = await s3.CommitUploadAsync(
                expected,
                upload,
                (content, ct) => UploadedBlobs.CheckAsync(expected, content, options.MaxBlobBytes, options.UploadLimits, s3.Location, ct),
                cancellationToken).ConfigureAwait(false);
            var result = new StoredBlob(expected.ToString(), stored);
            return stored ? TypedResults.Created((string?)null, result) : TypedResults.Ok(result);
        })
            .Accepts<BlobCommitRequest>("application/json")
            .Fails(400, 409, 413, 422, 503)
            .WithSummary("With blobs in S3: check an upload made to a pre-signed URL and store it under its digest.");

        api.MapPut("/blobs/{digest}", async Task<Results<Created<StoredBlob>, Ok<StoredBlob>>> (string digest, HttpRequest request, CancellationToken cancellationToken) =>
        {
            var expected = Digest.Parse(digest);
            if (blobs is S3BlobStore)
            {
                // Scale-out servers never carry blob bytes: they would be the bottleneck of every deploy.
                throw new BadRequestException($"this server keeps blobs in S3 and takes no blob bytes itself: ask POST /api/v1/blobs/missing for an upload URL for {expected}, PUT the bytes there, then POST /api/v1/blobs/{expected}/commit.");
            }

            if (request.ContentLength > options.MaxBlobBytes)
            {
                throw new RequestTooLargeException($"blob {expected} is {request.ContentLength} bytes; this server accepts blobs up to {options.MaxBlobBytes} bytes.");
            }

            if (await blobs.ContainsAsync(expected, cancellationToken).ConfigureAwait(false))
            {
                // Still read and check it: a client that sends wrong bytes should hear so, not "fine".
                await UploadedBlobs.PutAsync(blobs, expected, request.Body, options.MaxBlobBytes, options.UploadLimits, cancellationToken).ConfigureAwait(false);
                return TypedResults.Ok(new StoredBlob(expected.ToString(), Stored: false));
            }

            await UploadedBlobs.PutAsync(blobs, expected, request.Body, options.MaxBlobBytes, options.UploadLimits, cancellationToken).ConfigureAwait(false);
            return TypedResults.Created((string?)null, new StoredBlob(expected.ToString(), Stored: true));
        })
            .Accepts<Stream>("application/octet-stream")
            .Fails(400, 413, 422, 503)
            .WithSummary("Upload a blob (streamed); it is checked before it enters the store.");

        api.MapGet("/blobs/{digest}", async Task<Results<FileStreamHttpResult, RedirectHttpResult>> (string digest, CancellationToken cancellationToken) =>
        {
            var wanted = Digest.Parse(digest);
            if (blobs is S3BlobStore s3)
            {
                if (!await s3.ContainsAsync(wanted, cancellationToken).ConfigureAwait(false))
                {
                    throw new BlobNotFoundException(wanted, s3.Location);
                }

                // The reader fetches from S3 itself (and checks the bytes against the digest, as an agent's cache
                // does); 307 so that a client that follows it keeps the GET.
                return TypedResults.Redirect((await s3.PresignDownloadAsync(wanted, cancellationToken).ConfigureAwait(false)).ToString(), permanent: false, preserveMethod: true);
            }

            var stream = await blobs.OpenReadAsync(wanted, cancellationToken).ConfigureAwait(false);
            return TypedResults.Stream(stream, "application/octet-stream");
        })
            .Produces<Stream>(StatusCodes.Status200OK, "application/octet-stream")
            .Produces(StatusCodes.Status307TemporaryRedirect)
            .Fails(400, 404, 503)
            .WithSummary("A blob's bytes, verified before they are sent; with blobs in S3, a redirect to a pre-signed URL.");
    }
}
