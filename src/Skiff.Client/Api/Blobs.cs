using System.Text.Json.Serialization;

namespace Skiff.Client.Api;

// The messages of /api/v1/blobs: small records that only make sense together, so they share a file.

/// <summary>The body of <c>POST /api/v1/blobs/missing</c>.</summary>
/// <param name="Digests">The blobs the caller means to use, as <c>sha256:…</c>.</param>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record MissingBlobsRequest(IReadOnlyList<string> Digests);

/// <summary>The answer of <c>POST /api/v1/blobs/missing</c>.</summary>
/// <param name="Missing">The digests the server lacks.</param>
/// <param name="Uploads">
/// Only from a server with blobs in S3: where to PUT each missing blob, by digest; commit each one afterwards with
/// <c>POST /api/v1/blobs/{digest}/commit</c>.
/// </param>
internal sealed record MissingBlobs(
    IReadOnlyList<string> Missing,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyDictionary<string, BlobUpload>? Uploads = null);

/// <summary>A pre-signed PUT URL for one blob and the id that commits it.</summary>
/// <param name="Upload">The id to commit the upload with.</param>
/// <param name="Url">S3's pre-signed PUT URL; it takes no token of Skiff's.</param>
/// <param name="Expires">When the URL stops working (15 minutes after it was handed out).</param>
internal sealed record BlobUpload(string Upload, string Url, DateTimeOffset Expires);

/// <summary>The body of <c>POST /api/v1/blobs/{digest}/commit</c>.</summary>
/// <param name="Upload">The id <see cref="BlobUpload.Upload"/> gave.</param>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record BlobCommitRequest(string Upload);

/// <summary>The answer to an upload or a commit.</summary>
/// <param name="Digest">The blob.</param>
/// <param name="Stored">True when it is new to the store (201); false when it was there already (200), checked all the same.</param>
internal sealed record StoredBlob(string Digest, bool Stored);
