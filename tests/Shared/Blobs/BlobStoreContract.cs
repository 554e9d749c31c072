using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;

namespace Skiff.Testing.Blobs;

/// <summary>
/// What every <see cref="IBlobStore"/> promises, run against each one (the file store in Skiff.Core.Tests, S3 in
/// Skiff.Server.Tests). Each test gets a new, empty store; a subclass says how to make one and how to reach
/// behind its back (damage a stored blob, drop junk beside the blobs, see what uploads left over).
/// </summary>
public abstract class BlobStoreContract : IAsyncLifetime
{
    private IBlobStore? _store;

    private protected IBlobStore Store => _store ?? throw new InvalidOperationException("InitializeAsync has not run");

    /// <summary>How many rounds the concurrency test runs; each round puts one blob eight times at once.</summary>
    private protected virtual int ConcurrentRounds => 10;

    /// <summary>A new, empty store.</summary>
    private protected abstract Task<IBlobStore> CreateStoreAsync();

    /// <summary>A second store on the same place as <see cref="Store"/>, as another process would open it.</summary>
    private protected abstract Task<IBlobStore> OpenSameStoreAsync();

    /// <summary>Replaces a stored blob's bytes without the store knowing.</summary>
    private protected abstract Task DamageAsync(Digest digest, Func<byte[], byte[]> change);

    /// <summary>Writes something where the blobs are, under a name that is not a digest's.</summary>
    private protected abstract Task WriteJunkAsync(string name);

    /// <summary>What puts left behind outside the blobs (temporary files, staging objects); should be nothing.</summary>
    private protected abstract Task<IReadOnlyList<string>> LeftoversAsync();

    public async Task InitializeAsync() => _store = await CreateStoreAsync();

    public virtual Task DisposeAsync()
    {
        (_store as IDisposable)?.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Put_ThenContainsAndOpen_GiveBackTheSameBytes()
    {
        var content = Bytes(300_000);

        var digest = await Store.PutAsync(new MemoryStream(content), CancellationToken.None);

        digest.ShouldBe(Digest.Compute(content));
        (await Store.ContainsAsync(digest, CancellationToken.None)).ShouldBeTrue();
        (await Store.GetLengthAsync(digest, CancellationToken.None)).ShouldBe(content.Length);
        (await ReadAllAsync(Store, digest)).ShouldBe(content);
        (await LeftoversAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task Put_FromAStreamThatCannotSeek_StoresIt()
    {
        var content = Bytes(2_500_000, seed: 4);

        var digest = await Store.PutAsync(new ForwardOnlyStream(content), CancellationToken.None);
        await Store.PutAsync(digest, new ForwardOnlyStream(content), CancellationToken.None);

        digest.ShouldBe(Digest.Compute(content));
        (await ReadAllAsync(Store, digest)).ShouldBe(content);
        (await LeftoversAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task PutExpected_MatchingContent_IsStoredAndIdempotent()
    {
        var content = Bytes(1000);
        var digest = Digest.Compute(content);

        await Store.PutAsync(digest, new MemoryStream(content), CancellationToken.None);
        await Store.PutAsync(digest, new MemoryStream(content), CancellationToken.None);

        (await ReadAllAsync(Store, digest)).ShouldBe(content);
        (await ListAsync(Store)).ShouldBe([digest]);
        (await LeftoversAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task PutExpected_WrongDigest_IsRejectedAndTheStoreIsUnchanged()
    {
        var existing = await Store.PutAsync(new MemoryStream(Bytes(100, seed: 1)), CancellationToken.None);
        var claimed = Digest.Compute(Bytes(100, seed: 2));
        var actual = Bytes(100, seed: 3);

        var error = await Should.ThrowAsync<BlobIntegrityException>(() => Store.PutAsync(claimed, new MemoryStream(actual), CancellationToken.None));

        error.Expected.ShouldBe(claimed);
        error.Actual.ShouldBe(Digest.Compute(actual));
        error.Message.ShouldContain(claimed.ToString());
        error.Message.ShouldContain(Digest.Compute(actual).ToString());
        error.Message.ShouldContain(Store.Location);
        error.Message.ShouldContain("nothing was stored");
        (await ListAsync(Store)).ShouldBe([existing]);
        (await LeftoversAsync()).ShouldBeEmpty();
        (await Store.ContainsAsync(claimed, CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task PutExpected_WrongContentForABlobAlreadyStored_IsStillRejected()
    {
        var content = Bytes(100);
        var digest = await Store.PutAsync(new MemoryStream(content), CancellationToken.None);

        await Should.ThrowAsync<BlobIntegrityException>(() => Store.PutAsync(digest, new MemoryStream(Bytes(100, seed: 9)), CancellationToken.None));

        (await ReadAllAsync(Store, digest)).ShouldBe(content);
    }

    [Fact]
    public async Task Open_BlobWithAFlippedByte_IsDetectedQuarantinedAndReported()
    {
        var content = Bytes(50_000);
        var digest = await Store.PutAsync(new MemoryStream(content), CancellationToken.None);
        await DamageAsync(digest, bytes =>
        {
            bytes[25_000] ^= 0x01;
            return bytes;
        });

        var error = await Should.ThrowAsync<BlobIntegrityException>(() => Store.OpenReadAsync(digest, CancellationToken.None));

        error.Expected.ShouldBe(digest);
        error.Actual.ShouldNotBe(digest);
        error.Message.ShouldContain($"blob {digest} in the store at {Store.Location} did not match its digest (got {error.Actual})");
        error.Message.ShouldContain("quarantined and must be put again");
        (await Store.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
        await Should.ThrowAsync<BlobNotFoundException>(() => Store.OpenReadAsync(digest, CancellationToken.None));
        (await AllAsync(Store.ListQuarantinedAsync(CancellationToken.None))).ShouldBe([digest]);

        // Put again, it is whole and readable; the damaged copy stays in the quarantine for a person to look at.
        await Store.PutAsync(digest, new MemoryStream(content), CancellationToken.None);
        (await ReadAllAsync(Store, digest)).ShouldBe(content);
        (await AllAsync(Store.ListQuarantinedAsync(CancellationToken.None))).ShouldBe([digest]);
        (await AllAsync(Store.ListAsync(CancellationToken.None))).ShouldBe([digest]);
    }

    [Fact]
    public async Task Verify_HashesUnlessHashedWithinTheTrustWindow_AndQuarantinesDamage()
    {
        var content = Bytes(40_000);
        var digest = await Store.PutAsync(new MemoryStream(content), CancellationToken.None);

        (await Store.VerifyAsync(digest, TimeSpan.FromHours(1), CancellationToken.None)).ShouldBeFalse("hashed by its put just now");
        (await Store.VerifyAsync(digest, TimeSpan.Zero, CancellationToken.None)).ShouldBeTrue();
        var other = await OpenSameStoreAsync();
        try
        {
            (await other.VerifyAsync(digest, TimeSpan.FromHours(1), CancellationToken.None)).ShouldBeTrue("another process has not hashed it");
        }
        finally
        {
            (other as IDisposable)?.Dispose();
        }

        await DamageAsync(digest, bytes =>
        {
            bytes[123] ^= 0x40;
            return bytes;
        });
        await Should.ThrowAsync<BlobIntegrityException>(() => Store.VerifyAsync(digest, TimeSpan.Zero, CancellationToken.None));
        (await Store.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
        (await AllAsync(Store.ListQuarantinedAsync(CancellationToken.None))).ShouldBe([digest]);
        await Should.ThrowAsync<BlobNotFoundException>(() => Store.VerifyAsync(digest, TimeSpan.FromHours(1), CancellationToken.None));
        (await Store.QuarantineAsync(digest, CancellationToken.None)).ShouldBeFalse("it is not stored any more");
    }

    private static async Task<List<Digest>> AllAsync(IAsyncEnumerable<Digest> blobs)
    {
        var all = new List<Digest>();
        await foreach (var blob in blobs)
        {
            all.Add(blob);
        }

        return all;
    }

    [Fact]
    public async Task Open_LargeTruncatedBlob_IsDetectedQuarantinedAndReported()
    {
        // Over a megabyte: a store that checks small blobs in memory checks large ones another way.
        var digest = await Store.PutAsync(new MemoryStream(Bytes(3_000_000)), CancellationToken.None);
        await DamageAsync(digest, bytes => bytes[..(bytes.Length / 2)]);

        var error = await Should.ThrowAsync<BlobIntegrityException>(() => Store.OpenReadAsync(digest, CancellationToken.None));

        error.Message.ShouldContain("quarantined");
        (await Store.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task Open_MissingBlob_ThrowsNotFoundNamingTheDigestAndStore()
    {
        var digest = Digest.Compute("nothing"u8);

        var error = await Should.ThrowAsync<BlobNotFoundException>(() => Store.OpenReadAsync(digest, CancellationToken.None));

        error.Digest.ShouldBe(digest);
        error.Message.ShouldContain(digest.ToString());
        error.Message.ShouldContain(Store.Location);
        (await Store.GetLengthAsync(digest, CancellationToken.None)).ShouldBeNull();
        (await Store.GetWrittenAtAsync(digest, CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task Put_SameContentConcurrentlyFromTwoStoresOnOnePlace_StoresExactlyOneBlob()
    {
        var first = Store;
        var second = await OpenSameStoreAsync();
        try
        {
            var expectedAll = new List<Digest>();
            for (var round = 0; round < ConcurrentRounds; round++)
            {
                var content = Bytes(64 * 1024 + round, seed: round);
                var expected = Digest.Compute(content);
                expectedAll.Add(expected);

                var puts = new List<Task<Digest>>();
                foreach (var store in new[] { first, second, first, second })
                {
                    puts.Add(Task.Run(() => store.PutAsync(new MemoryStream(content), CancellationToken.None)));
                    puts.Add(Task.Run(async () =>
                    {
                        await store.PutAsync(expected, new MemoryStream(content), CancellationToken.None);
                        return expected;
                    }));
                }

                (await Task.WhenAll(puts)).ShouldAllBe(d => d == expected);
                (await ReadAllAsync(second, expected)).ShouldBe(content);
            }

            (await ListAsync(first)).ShouldBe(expectedAll, ignoreOrder: true);
            (await LeftoversAsync()).ShouldBeEmpty();
        }
        finally
        {
            (second as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public async Task List_ListsExactlyWhatWasPutAndIgnoresJunk()
    {
        var put = new List<Digest>();
        for (var i = 0; i < 3; i++)
        {
            put.Add(await Store.PutAsync(new MemoryStream(Bytes(100, seed: i)), CancellationToken.None));
        }

        var hex = put[0].Hex;
        await WriteJunkAsync("README");
        await WriteJunkAsync(hex.ToUpperInvariant());
        await WriteJunkAsync(hex[..63]);
        await WriteJunkAsync(hex + ".tmp");

        (await ListAsync(Store)).Order().ShouldBe(put.Order());
    }

    [Fact]
    public async Task Delete_RemovesTheBlobOnce()
    {
        var digest = await Store.PutAsync(new MemoryStream(Bytes(100)), CancellationToken.None);

        (await Store.DeleteAsync(digest, CancellationToken.None)).ShouldBeTrue();
        (await Store.DeleteAsync(digest, CancellationToken.None)).ShouldBeFalse();
        (await Store.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task Touch_KeepsTheBytesAndMovesTheWriteTimeForward()
    {
        var content = Bytes(100);
        var digest = await Store.PutAsync(new MemoryStream(content), CancellationToken.None);
        var written = await Store.GetWrittenAtAsync(digest, CancellationToken.None);
        var absent = Digest.Compute("absent"u8);

        await Store.TouchAsync(digest, CancellationToken.None);
        await Store.TouchAsync(absent, CancellationToken.None);

        written.ShouldNotBeNull();
        (await Store.GetWrittenAtAsync(digest, CancellationToken.None)).ShouldNotBeNull().ShouldBeGreaterThanOrEqualTo(written.Value);
        (await ReadAllAsync(Store, digest)).ShouldBe(content);
        (await Store.ContainsAsync(absent, CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task GarbageCollector_KeepsWhatAKeptReleaseReachesAndDeletesTheRest()
    {
        var kept = await ReleaseAsync("kept");
        var dropped = await ReleaseAsync("dropped");
        var junk = await Store.PutAsync(new MemoryStream("junk"u8.ToArray()), CancellationToken.None);

        var result = await GarbageCollector.CollectAsync(Store, [kept.Release], CancellationToken.None);

        var left = await ListAsync(Store);
        left.ShouldBe([kept.Release, kept.Environment, kept.Source, kept.Package], ignoreOrder: true);
        dropped.Environment.ShouldBe(kept.Environment);
        left.ShouldNotContain(dropped.Release);
        left.ShouldNotContain(junk);
        result.Deleted.ShouldBe(3);
    }

    [Fact]
    public async Task GarbageCollector_SparesBlobsWrittenAfterTheGivenTime()
    {
        var junk = await Store.PutAsync(new MemoryStream("junk"u8.ToArray()), CancellationToken.None);
        var written = (await Store.GetWrittenAtAsync(junk, CancellationToken.None)).ShouldNotBeNull();

        var spared = await GarbageCollector.CollectAsync(Store, [], CancellationToken.None, spareWrittenAfter: written.AddMinutes(-5));
        var collected = await GarbageCollector.CollectAsync(Store, [], CancellationToken.None, spareWrittenAfter: written.AddMinutes(5));

        spared.Deleted.ShouldBe(0);
        collected.Deleted.ShouldBe(1);
        (await ListAsync(Store)).ShouldBeEmpty();
    }

    private protected static byte[] Bytes(int length, int seed = 0)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private protected static async Task<byte[]> ReadAllAsync(IBlobStore store, Digest digest)
    {
        await using var stream = await store.OpenReadAsync(digest, CancellationToken.None);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    private protected static async Task<List<Digest>> ListAsync(IBlobStore store)
    {
        var digests = new List<Digest>();
        await foreach (var digest in store.ListAsync(CancellationToken.None))
        {
            digests.Add(digest);
        }

        return digests;
    }

    /// <summary>A release with its manifests, a source blob and one package; the collector reads only the manifests.</summary>
    private async Task<(Digest Release, Digest Environment, Digest Source, Digest Package)> ReleaseAsync(string program)
    {
        var package = await Store.PutAsync(new MemoryStream("library bytes"u8.ToArray()), CancellationToken.None);
        var source = await Store.PutAsync(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(program)), CancellationToken.None);
        var environment = EnvironmentManifest.Create("net10.0", "linux-x64", ["Microsoft.NETCore.App"], "default", [new PackageEntry("Lib", "1.0.0", "sha512-x", package)]);
        var environmentDigest = await Store.PutAsync(new MemoryStream(environment.ToBytes()), CancellationToken.None);
        var release = ReleaseManifest.Create(environmentDigest, source, "App.dll", sdkVersion: null);
        return (await Store.PutAsync(new MemoryStream(release.ToBytes()), CancellationToken.None), environmentDigest, source, package);
    }

    /// <summary>Content that can be read once, front to back, as a request body is.</summary>
    private sealed class ForwardOnlyStream(byte[] content) : Stream
    {
        private readonly MemoryStream _inner = new(content);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
