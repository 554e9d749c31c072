using Skiff.Core;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;

namespace Skiff.Server.Deployments;

/// <summary>A release's entry assembly is a file of its own source blob, checked before the release is registered.</summary>
internal static class EntryAssemblies
{
    /// <exception cref="InvalidManifestException">The source blob holds no file by the entry's name.</exception>
    /// <exception cref="BlobNotFoundException">The source blob is not stored.</exception>
    public static async Task CheckInSourceAsync(IBlobStore blobs, Digest release, ReleaseManifest manifest, CancellationToken cancellationToken)
    {
        // The manifest's own check already made it a plain file name; here it must also be there, at the top of
        // the source folder where the agent looks for it.
        var stream = await blobs.OpenReadAsync(manifest.Source, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var entries = await ArchiveReader.ListAsync(stream, $"source {manifest.Source}", ArchiveLimits.Default, cancellationToken).ConfigureAwait(false);
            if (!entries.Any(entry => entry.Path == manifest.EntryAssembly))
            {
                throw new InvalidManifestException(
                    $"release {release}",
                    $"its entry_assembly '{manifest.EntryAssembly}' is not a file of its source blob {manifest.Source}");
            }
        }
    }
}
