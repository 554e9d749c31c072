using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;
using Skiff.Server.Hosting;

namespace Skiff.Server.Api;

/// <summary>
/// Blob upload and download. An upload is staged, checked against its digest and against what it claims
/// to be (a safe archive, or a manifest in canonical form), and only then moved into the store: a rejected
/// upload leaves the store as it was.
/// </summary>
internal static class BlobEndpoints
{
    private const int MaxManifestBytes = 16 * 1024 * 1024;

    public static void Map(IEndpointRouteBuilder api, FileBlobStore blobs, ServerOptions options)
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
                if (!await blobs.ContainsAsync(digest, cancellationToken).ConfigureAwait(false))
                {
                    missing.Add(digest.ToString());
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
                await PutCheckedAsync(blobs, expected, request.Body, options.MaxBlobBytes, cancellationToken).ConfigureAwait(false);
                return Results.Ok(new JsonObject { ["digest"] = expected.ToString(), ["stored"] = false });
            }

            await PutCheckedAsync(blobs, expected, request.Body, options.MaxBlobBytes, cancellationToken).ConfigureAwait(false);
            return Results.Json(new JsonObject { ["digest"] = expected.ToString(), ["stored"] = true }, statusCode: StatusCodes.Status201Created);
        });

        api.MapGet("/blobs/{digest}", async (string digest, CancellationToken cancellationToken) =>
        {
            var stream = await blobs.OpenReadAsync(Digest.Parse(digest), cancellationToken).ConfigureAwait(false);
            return Results.Stream(stream, "application/octet-stream");
        });
    }

    private static async Task PutCheckedAsync(FileBlobStore blobs, Digest expected, Stream body, long limit, CancellationToken cancellationToken)
    {
        var staged = blobs.NewTempPath();
        try
        {
            var file = new FileStream(staged, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    if (file.Length + read > limit)
                    {
                        throw new RequestTooLargeException($"blob {expected} is over {limit} bytes, the most this server accepts.");
                    }

                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }

                file.Position = 0;
                var actual = await Digest.ComputeAsync(file, cancellationToken).ConfigureAwait(false);
                if (actual != expected)
                {
                    throw BlobIntegrityException.ForPut(expected, actual, "this server");
                }

                file.Position = 0;
                await CheckContentAsync(expected, file, cancellationToken).ConfigureAwait(false);
            }

            var stored = await blobs.ImportFileAsync(staged, cancellationToken).ConfigureAwait(false);
            if (stored != expected)
            {
                throw BlobIntegrityException.ForPut(expected, stored, "this server");
            }
        }
        finally
        {
            File.Delete(staged);
        }
    }

    /// <summary>Archives must be safe to unpack; anything else must be a manifest in Skiff's canonical form.</summary>
    private static async Task CheckContentAsync(Digest digest, FileStream file, CancellationToken cancellationToken)
    {
        var magic = new byte[2];
        var read = await file.ReadAsync(magic, cancellationToken).ConfigureAwait(false);
        file.Position = 0;
        if (read == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
        {
            await ArchiveReader.ListAsync(file, $"blob {digest}", ArchiveLimits.Default, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (file.Length > MaxManifestBytes)
        {
            throw new InvalidManifestException($"blob {digest}", "it is neither an archive nor small enough to be a manifest");
        }

        var bytes = new byte[file.Length];
        await file.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
        file.Position = 0;
        var canonical = bytes.AsSpan().StartsWith("{\"schema\":\"skiff.release/"u8)
            ? ReleaseManifest.FromBytes(bytes, $"blob {digest}").ToBytes()
            : EnvironmentManifest.FromBytes(bytes, $"blob {digest}").ToBytes();
        if (!canonical.AsSpan().SequenceEqual(bytes))
        {
            throw new InvalidManifestException($"blob {digest}", "it is not in canonical form (as `skiff build` writes it)");
        }
    }
}
