using System.Net;
using System.Net.Http.Headers;
using Skiff.Core;

namespace Skiff.Cli.Export.Registry;

/// <summary>
/// Pushes an <see cref="OciImage"/> to a registry as the OCI distribution spec's push workflow says: each blob is asked
/// for first (<c>HEAD</c>) and uploaded only when the registry lacks it (<c>POST</c> an upload, then one <c>PUT</c> with
/// the whole blob and its digest); the manifest is put by tag last, so the tag names the image only once every blob it
/// needs is there. A failed push leaves at most some untagged blobs, which the registry's garbage collection removes.
/// </summary>
internal static class ImagePusher
{
    /// <exception cref="RegistryException">The registry refused or failed a step; the tag was not moved.</exception>
    public static async Task<PushedImage> PushAsync(RegistryClient registry, ImageReference target, OciImage image, CancellationToken cancellationToken)
    {
        var uploaded = new List<(Digest Digest, long Size)>();
        var present = 0;
        foreach (var (digest, size, open) in image.Blobs())
        {
            if (await HasBlobAsync(registry, digest, cancellationToken).ConfigureAwait(false))
            {
                present++;
                continue;
            }

            await UploadAsync(registry, digest, size, open, cancellationToken).ConfigureAwait(false);
            uploaded.Add((digest, size));
        }

        var putManifest = $"PUT of the manifest {image.Digest} as {target.Tag}";
        using var put = await registry.SendAsync(
            () => new HttpRequestMessage(HttpMethod.Put, registry.Api($"manifests/{target.Tag}"))
            {
                Content = new ByteArrayContent(image.Manifest) { Headers = { ContentType = new MediaTypeHeaderValue(OciImageWriter.ManifestMediaType) } },
            },
            putManifest,
            cancellationToken).ConfigureAwait(false);
        // The spec says 201; clients (containers/image) take any 2xx, and so do some registries' answers.
        if (!put.IsSuccessStatusCode)
        {
            throw await registry.FailureAsync(put, putManifest, cancellationToken).ConfigureAwait(false);
        }

        // The registry names what it stored; a registry that rewrote the manifest would not serve this image's digest.
        if (put.Headers.TryGetValues("Docker-Content-Digest", out var stored) && stored.FirstOrDefault() is { } storedDigest && storedDigest != image.Digest.ToString())
        {
            throw new RegistryException(
                $"registry {target.Registry} stored the manifest of {image.Digest} as {storedDigest}: it changed the image, so {target} does not name the image skiff built. Push to a registry that keeps OCI manifests as they are (distribution 2.7 or later), and do not use {target} as it is.");
        }

        return new PushedImage(target, image.Digest, [.. uploaded.Select(u => u.Digest)], uploaded.Sum(u => u.Size), present);
    }

    private static async Task<bool> HasBlobAsync(RegistryClient registry, Digest digest, CancellationToken cancellationToken)
    {
        var what = $"HEAD of blob {digest}";
        using var head = await registry.SendAsync(() => new HttpRequestMessage(HttpMethod.Head, registry.Api($"blobs/{digest}")), what, cancellationToken).ConfigureAwait(false);
        return head.StatusCode switch
        {
            HttpStatusCode.OK => true,
            // A registry whose blobs are in an object store sends a client to the blob's bytes there (distribution with
            // storage redirects, Docker Hub): it only does so for a blob it has. Following would send a HEAD to a URL
            // signed for GET.
            HttpStatusCode.TemporaryRedirect or HttpStatusCode.Redirect or HttpStatusCode.SeeOther or HttpStatusCode.PermanentRedirect => true,
            HttpStatusCode.NotFound => false,
            _ => throw await registry.FailureAsync(head, what, cancellationToken).ConfigureAwait(false),
        };
    }

    /// <summary>
    /// One monolithic upload: a session (<c>POST …/blobs/uploads/</c>), then the whole blob in one <c>PUT</c> with its
    /// digest. Chunked <c>PATCH</c>es would only add round trips here: the blob is a local file of known length, and a
    /// failed upload is started over as a whole anyway.
    /// </summary>
    private static async Task UploadAsync(RegistryClient registry, Digest digest, long size, Func<Stream> open, CancellationToken cancellationToken)
    {
        Uri location;
        var postUpload = $"POST of an upload for blob {digest}";
        using (var post = await registry.SendAsync(
            () => new HttpRequestMessage(HttpMethod.Post, registry.Api("blobs/uploads/")) { Content = new ByteArrayContent([]) },
            postUpload,
            cancellationToken).ConfigureAwait(false))
        {
            if (post.StatusCode != HttpStatusCode.Accepted)
            {
                throw await registry.FailureAsync(post, postUpload, cancellationToken).ConfigureAwait(false);
            }

            if (post.Headers.Location is null)
            {
                throw new RegistryException(
                    $"registry {registry.Root.Authority} opened an upload for blob {digest} without saying where to send it (202 without a Location header), as no OCI registry does; nothing was tagged. Check that {registry.Root} is a container registry, not a proxy in front of one that drops headers.");
            }

            location = post.Headers.Location.IsAbsoluteUri ? post.Headers.Location : new Uri(registry.Root, post.Headers.Location);
        }

        var target = new UriBuilder(location);
        target.Query = (target.Query.Length > 1 ? target.Query[1..] + "&" : "") + $"digest={Uri.EscapeDataString(digest.ToString())}";
        var putBlob = $"PUT of blob {digest} ({size} bytes)";
        using var put = await registry.SendAsync(
            () => new HttpRequestMessage(HttpMethod.Put, target.Uri)
            {
                Content = new StreamContent(open(), 1 << 16)
                {
                    Headers = { ContentType = new MediaTypeHeaderValue("application/octet-stream"), ContentLength = size },
                },
            },
            putBlob,
            cancellationToken).ConfigureAwait(false);
        if (put.StatusCode != HttpStatusCode.Created)
        {
            throw await registry.FailureAsync(put, putBlob, cancellationToken).ConfigureAwait(false);
        }
    }
}

/// <summary>What a push did: the image's digest under its reference, and which blobs travelled.</summary>
internal sealed record PushedImage(ImageReference Reference, Digest Image, IReadOnlyList<Digest> Uploaded, long UploadedBytes, int AlreadyThere);
