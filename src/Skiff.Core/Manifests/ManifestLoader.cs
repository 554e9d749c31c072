using Skiff.Core.Blobs;

namespace Skiff.Core.Manifests;

/// <summary>Reads manifests out of a blob store, verified like every other blob.</summary>
internal static class ManifestLoader
{
    // Manifests are small JSON documents; anything bigger is not one of ours and is not read into memory.
    private const int MaxManifestBytes = 16 * 1024 * 1024;

    public static async Task<ReleaseManifest> LoadReleaseAsync(IBlobStore store, Digest release, CancellationToken cancellationToken)
    {
        var bytes = await ReadAsync(store, release, "release", cancellationToken).ConfigureAwait(false);
        return ReleaseManifest.FromBytes(bytes, $"release {release}");
    }

    public static async Task<EnvironmentManifest> LoadEnvironmentAsync(IBlobStore store, Digest environment, CancellationToken cancellationToken)
    {
        var bytes = await ReadAsync(store, environment, "environment", cancellationToken).ConfigureAwait(false);
        return EnvironmentManifest.FromBytes(bytes, $"environment {environment}");
    }

    private static async Task<byte[]> ReadAsync(IBlobStore store, Digest digest, string kind, CancellationToken cancellationToken)
    {
        var length = await store.GetLengthAsync(digest, cancellationToken).ConfigureAwait(false);
        if (length > MaxManifestBytes)
        {
            throw new InvalidManifestException($"{kind} {digest}", $"it is {length} bytes, more than a manifest can be ({MaxManifestBytes} bytes)");
        }

        var stream = await store.OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer.ToArray();
        }
    }
}
