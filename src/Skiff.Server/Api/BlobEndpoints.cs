using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Server.Hosting;

namespace Skiff.Server.Api;

/// <summary>Blob upload (checked by <see cref="UploadedBlobs"/> before it enters the store) and download.</summary>
internal static class BlobEndpoints
{
    // A blob written or touched this recently is spared by gc for most of its hour anyway; touching it again
    // would cost an S3 copy per blob on every deploy.
    private static readonly TimeSpan TouchAfter = TimeSpan.FromMinutes(10);

    public static void Map(IEndpointRouteBuilder api, IBlobStore blobs, ServerOptions options, TimeProvider time)
    {
        api.MapPost("/blobs/missing", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            var body = await Requests.ReadJsonAsync(request, options.MaxJsonBytes, cancellationToken).ConfigureAwait(false);
            var digests = (body["digests"] as JsonArray ?? throw new BadRequestException("the request needs \"digests\": an array of sha256:… strings."))
                .Select(node => Digest.Parse((string?)node ?? ""))
                .Distinct()
                .ToList();
            var missing = new JsonArray();
            foreach (var digest in digests)
            {
                var written = await blobs.GetWrittenAtAsync(digest, cancellationToken).ConfigureAwait(false);
                if (written is null)
                {
                    missing.Add(digest.ToString());
                }
                else if (written < time.GetUtcNow() - TouchAfter)
                {
                    await blobs.TouchAsync(digest, cancellationToken).ConfigureAwait(false);
                }
            }

            return Results.Json(new JsonObject { ["missing"] = missing });
        });

        api.MapPut("/blobs/{digest}", async (string digest, HttpRequest request, CancellationToken cancellationToken) =>
        {
            var expected = Digest.Parse(digest);
            if (request.ContentLength > options.MaxBlobBytes)
            {
                throw new RequestTooLargeException($"blob {expected} is {request.ContentLength} bytes; this server accepts blobs up to {options.MaxBlobBytes} bytes.");
            }

            if (await blobs.ContainsAsync(expected, cancellationToken).ConfigureAwait(false))
            {
                // Still read and check it: a client that sends wrong bytes should hear so, not "fine".
                await UploadedBlobs.PutAsync(blobs, expected, request.Body, options.MaxBlobBytes, ArchiveLimits.Default, cancellationToken).ConfigureAwait(false);
                return Results.Ok(new JsonObject { ["digest"] = expected.ToString(), ["stored"] = false });
            }

            await UploadedBlobs.PutAsync(blobs, expected, request.Body, options.MaxBlobBytes, ArchiveLimits.Default, cancellationToken).ConfigureAwait(false);
            return Results.Json(new JsonObject { ["digest"] = expected.ToString(), ["stored"] = true }, statusCode: StatusCodes.Status201Created);
        });

        api.MapGet("/blobs/{digest}", async (string digest, CancellationToken cancellationToken) =>
        {
            var stream = await blobs.OpenReadAsync(Digest.Parse(digest), cancellationToken).ConfigureAwait(false);
            return Results.Stream(stream, "application/octet-stream");
        });
    }
}
