using Skiff.Client.Api;
using Skiff.Core;

namespace Skiff.Client;

/// <summary>
/// Where to PUT one blob straight into the server's blob store (a pre-signed S3 URL), and the id that commits it
/// afterwards. A server with blobs in S3 hands these out with its answer to <c>POST /api/v1/blobs/missing</c>.
/// </summary>
internal sealed record DirectUpload(string Id, Uri Url)
{
    /// <summary>The blob store's address for messages: scheme, host and port, never the URL's signature.</summary>
    public string Endpoint => Url.GetLeftPart(UriPartial.Authority);

    /// <summary>The uploads in a missing-blobs answer, by digest; empty when the server takes the bytes itself.</summary>
    public static Dictionary<Digest, DirectUpload> FromAnswer(MissingBlobs answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        var uploads = new Dictionary<Digest, DirectUpload>();
        foreach (var (digest, upload) in answer.Uploads ?? new Dictionary<string, BlobUpload>())
        {
            if (upload is { Upload.Length: > 0 } && Uri.TryCreate(upload.Url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
            {
                uploads[Digest.Parse(digest)] = new DirectUpload(upload.Upload, uri);
            }
            else
            {
                throw new ClientException($"the server's upload instructions for blob {digest} are not an id and an http(s) URL; is the client older than the server?");
            }
        }

        return uploads;
    }
}
