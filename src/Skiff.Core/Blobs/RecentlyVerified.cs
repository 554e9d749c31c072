using System.Collections.Concurrent;

namespace Skiff.Core.Blobs;

/// <summary>
/// Blobs whose stored bytes this process hashed, and when: at a put, a checked read, or a scrub. A deployment takes a
/// blob hashed within its trust window as intact instead of hashing it again (IBlobStore.VerifyAsync), which keeps a
/// fast deploy from re-reading every package of its environment. Per process and bounded: a blob another process
/// damages or deletes is found by the next hash (the scrub, an agent's fetch) or, if deleted, by the existence check.
/// </summary>
internal sealed class RecentlyVerified(TimeProvider time)
{
    // Enough for every blob of a large platform; past it the memory starts empty again, which costs only re-hashing.
    private const int MaxRemembered = 200_000;

    private readonly ConcurrentDictionary<Digest, DateTimeOffset> _hashedAt = new();

    public void Remember(Digest digest)
    {
        if (_hashedAt.Count >= MaxRemembered)
        {
            _hashedAt.Clear();
        }

        _hashedAt[digest] = time.GetUtcNow();
    }

    public void Forget(Digest digest) => _hashedAt.TryRemove(digest, out _);

    /// <summary>Whether the blob's bytes were hashed less than <paramref name="trust"/> ago.</summary>
    public bool Within(Digest digest, TimeSpan trust) =>
        trust > TimeSpan.Zero && _hashedAt.TryGetValue(digest, out var at) && time.GetUtcNow() - at < trust;
}
