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

/// <summary>The answer of <c>GET /api/v1/blobs/scrub</c>: the background re-hashing of the store and what it found.</summary>
/// <param name="BytesPerSecond">The scrub's rate bound; 0 when it is off (<c>skiff server --scrub-rate 0</c>).</param>
/// <param name="LastPass">The pass under way, else the last one finished; null before the first.</param>
/// <param name="Quarantined">Every blob in the store's quarantine (found damaged by the scrub, a deployment or a read).</param>
internal sealed record ScrubReport(long BytesPerSecond, ScrubPassReport? LastPass, IReadOnlyList<QuarantinedBlobReport> Quarantined);

/// <summary>One pass of the scrub.</summary>
/// <param name="Started">When it started.</param>
/// <param name="Finished">When it ended; null while under way.</param>
/// <param name="Blobs">Blobs hashed.</param>
/// <param name="Bytes">Their bytes.</param>
/// <param name="Quarantined">The blobs this pass found damaged.</param>
/// <param name="Error">Why it ended early (the store did not answer), if it did.</param>
internal sealed record ScrubPassReport(DateTimeOffset Started, DateTimeOffset? Finished, int Blobs, long Bytes, IReadOnlyList<string> Quarantined, string? Error);

/// <summary>A blob in the quarantine: moved aside, kept for inspection, missing to the store.</summary>
/// <param name="Digest">The blob.</param>
/// <param name="Restored">True when it has been stored again since (a deploy uploaded it): nothing is affected any more.</param>
/// <param name="Releases">The releases that need it while it is missing (live, recent, pending or running ones).</param>
/// <param name="Locations">Where one of those is live; `skiff deploy` of the project uploads the blob again and they recover.</param>
internal sealed record QuarantinedBlobReport(string Digest, bool Restored, IReadOnlyList<string> Releases, IReadOnlyList<string> Locations);
