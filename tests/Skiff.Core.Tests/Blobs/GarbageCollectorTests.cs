using Skiff.Core.Blobs;

namespace Skiff.Core.Tests.Blobs;

public sealed class GarbageCollectorTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A_root_that_is_not_a_release_stops_the_collection_before_anything_is_deleted()
    {
        var store = new FileBlobStore(Path.Combine(_temp.Path, "store"));
        var release = await Some.ReleaseAsync(store, _temp.Path);
        var before = await ListAsync(store);

        await Should.ThrowAsync<Skiff.Core.Manifests.InvalidManifestException>(() => GarbageCollector.CollectAsync(store, [release.Source], CancellationToken.None));

        (await ListAsync(store)).ShouldBe(before, ignoreOrder: true);
    }

    private static async Task<List<Digest>> ListAsync(FileBlobStore store)
    {
        var digests = new List<Digest>();
        await foreach (var digest in store.ListAsync(CancellationToken.None))
        {
            digests.Add(digest);
        }

        return digests;
    }
}
