using System.Net;
using System.Net.Sockets;
using Amazon.S3.Model;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Server.Blobs;
using Skiff.Testing;
using Skiff.Testing.Blobs;

namespace Skiff.Server.Tests.Blobs;

/// <summary>The blob-store contract on a real S3 protocol server (s3rver), and what only S3 has: staging keys, outages.</summary>
public sealed class S3BlobStoreTests : BlobStoreContract
{
    private static readonly Lazy<Task<string>> SharedBucket = new(async () => await (await S3Server.Shared).CreateBucketAsync());

    // Each test its own prefix in one bucket: the prefix is part of what is under test.
    private readonly string _prefix = $"tests/{Guid.NewGuid():N}/";
    private readonly string _temp = Directory.CreateTempSubdirectory("skiff-tests-").FullName;
    private S3Server _server = null!;
    private string _bucket = null!;

    private string BlobsPrefix => _prefix + "blobs/sha256/";

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_temp, recursive: true);
    }

    private protected override async Task<IBlobStore> CreateStoreAsync()
    {
        _server = await S3Server.Shared;
        _bucket = await SharedBucket.Value;
        return await OpenAsync();
    }

    private protected override async Task<IBlobStore> OpenSameStoreAsync() => await OpenAsync();

    private protected override async Task DamageAsync(Digest digest, Func<byte[], byte[]> change)
    {
        using var client = _server.CreateClient();
        byte[] bytes;
        using (var response = await client.GetObjectAsync(_bucket, BlobsPrefix + digest.Hex))
        using (var copy = new MemoryStream())
        {
            await response.ResponseStream.CopyToAsync(copy);
            bytes = copy.ToArray();
        }

        await PutRawAsync(BlobsPrefix + digest.Hex, change(bytes));
    }

    private protected override Task WriteJunkAsync(string name) => PutRawAsync(BlobsPrefix + name, "junk"u8.ToArray());

    private protected override async Task<IReadOnlyList<string>> LeftoversAsync() =>
        [.. (await _server.KeysAsync(_bucket, _prefix)).Where(key => !key.StartsWith(BlobsPrefix, StringComparison.Ordinal))];

    [Fact]
    public async Task Blobs_are_kept_under_the_prefix_as_the_file_store_lays_them_out()
    {
        var digest = await Store.PutAsync(new MemoryStream(Bytes(10)), CancellationToken.None);

        (await _server.KeysAsync(_bucket, _prefix)).ShouldBe([$"{_prefix}blobs/sha256/{digest.Hex}"]);
        Store.Location.ShouldBe($"s3://{_bucket}/{_prefix} at {_server.Endpoint.GetLeftPart(UriPartial.Authority)}");
    }

    [Theory]
    [InlineData(100)]
    [InlineData(S3BlobStore.SmallUpload + 1)] // committed by copies inside S3 rather than from memory
    public async Task A_commit_stores_the_bytes_it_checked_even_when_the_upload_is_overwritten_meanwhile(int size)
    {
        var store = (S3BlobStore)Store;
        var good = Bytes(size);
        var digest = Digest.Compute(good);
        var upload = await store.PresignUploadAsync(CancellationToken.None);
        using var http = new HttpClient();
        (await http.PutAsync(upload.Url, new ByteArrayContent(good))).EnsureSuccessStatusCode();

        var stored = await store.CommitUploadAsync(digest, upload.Id, async (content, cancellationToken) =>
        {
            // The uploader still holds its URL and PUTs other bytes while the server checks the first ones.
            (await http.PutAsync(upload.Url, new ByteArrayContent(Bytes(50)), cancellationToken)).EnsureSuccessStatusCode();
            using var copy = new MemoryStream();
            await content.CopyToAsync(copy, cancellationToken);
            Digest.Compute(copy.ToArray()).ShouldBe(digest);
        }, CancellationToken.None);

        stored.ShouldBeTrue();
        await using (var read = await Store.OpenReadAsync(digest, CancellationToken.None))
        {
            read.Length.ShouldBe(good.Length);
        }

        // A small upload's staging key goes once its bytes are read and checked, the late PUT's with it. A large one's
        // goes before the check (its copy is checked): the late PUT made a new staging object, which no commit will
        // take; the next open deletes it after an hour.
        (await LeftoversAsync()).ShouldBe(size > S3BlobStore.SmallUpload ? [$"{_prefix}staging/{upload.Id}"] : []);
    }

    [Fact]
    public async Task A_blob_seen_stored_is_known_without_asking_s3_until_gc_could_have_taken_it_and_a_delete_of_its_own_forgets_it()
    {
        var time = new ShiftedTime(TimeSpan.Zero);
        using var store = await S3BlobStore.OpenAsync(Options(), _temp, time, CancellationToken.None);
        var kept = await store.PutAsync(new MemoryStream(Bytes(10)), CancellationToken.None);
        var deleted = await store.PutAsync(new MemoryStream(Bytes(11)), CancellationToken.None);
        (await store.ContainsAsync(kept, CancellationToken.None)).ShouldBeTrue();
        (await store.ContainsAsync(deleted, CancellationToken.None)).ShouldBeTrue();

        // Gone behind the store's back (only a damaged blob deleted by another server could go this way).
        using (var client = _server.CreateClient())
        {
            await client.DeleteObjectAsync(_bucket, BlobsPrefix + kept.Hex);
        }

        var remembered = await store.ContainsAsync(kept, CancellationToken.None);
        await store.DeleteAsync(deleted, CancellationToken.None);
        var forgotten = await store.ContainsAsync(deleted, CancellationToken.None);
        time.Ahead = BlobStores.SpareRecentBlobs - TimeSpan.FromMinutes(9);
        var askedAgain = await store.ContainsAsync(kept, CancellationToken.None);

        remembered.ShouldBeTrue("seen stored a moment ago: gc spares it, so S3 is not asked");
        forgotten.ShouldBeFalse();
        askedAgain.ShouldBeFalse("near the end of gc's spare window S3 is asked again");
    }

    [Fact]
    public async Task List_skips_keys_below_a_digest_and_outside_the_blobs()
    {
        var digest = await Store.PutAsync(new MemoryStream(Bytes(10)), CancellationToken.None);
        await PutRawAsync($"{BlobsPrefix}{digest.Hex}/nested", Bytes(5));
        await PutRawAsync($"{_prefix}staging/{Digest.Compute("x"u8).Hex}", Bytes(5));
        await PutRawAsync($"{_prefix}{Digest.Compute("y"u8).Hex}", Bytes(5));

        (await ListAsync(Store)).ShouldBe([digest]);
    }

    [Fact]
    public async Task Opening_deletes_staging_objects_older_than_an_hour_and_keeps_younger_ones()
    {
        var staged = $"{_prefix}staging/left-by-a-crash";
        await PutRawAsync(staged, Bytes(5));

        using (await S3BlobStore.OpenAsync(Options(), _temp, new ShiftedTime(TimeSpan.FromMinutes(30)), CancellationToken.None))
        {
        }

        (await _server.KeysAsync(_bucket, staged)).ShouldBe([staged]);
        using (await S3BlobStore.OpenAsync(Options(), _temp, new ShiftedTime(TimeSpan.FromHours(2)), CancellationToken.None))
        {
        }

        (await _server.KeysAsync(_bucket, staged)).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_stopped_server_gives_a_clear_error_naming_the_endpoint_and_bucket_and_nothing_is_stored()
    {
        var own = await S3Server.StartAsync();
        string bucket;
        S3BlobStore store;
        Digest stored;
        await using (own)
        {
            bucket = await own.CreateBucketAsync();
            store = await S3BlobStore.OpenAsync(Options(own, bucket), _temp, TimeProvider.System, CancellationToken.None);
            stored = await store.PutAsync(new MemoryStream(Bytes(100)), CancellationToken.None);
        }

        using (store)
        {
            var content = Bytes(200, seed: 7);
            var put = await Should.ThrowAsync<BlobStoreUnavailableException>(() => store.PutAsync(Digest.Compute(content), new MemoryStream(content), CancellationToken.None));
            var read = await Should.ThrowAsync<BlobStoreUnavailableException>(() => store.OpenReadAsync(stored, CancellationToken.None));
            var contains = await Should.ThrowAsync<BlobStoreUnavailableException>(() => store.ContainsAsync(stored, CancellationToken.None));

            var endpoint = own.Endpoint.GetLeftPart(UriPartial.Authority);
            put.Message.ShouldStartWith($"the blob store s3://{bucket}/{_prefix} at {endpoint} could not ");
            put.Message.ShouldContain("Check that it runs and is reachable");
            read.Message.ShouldContain($"could not read blob {stored}");
            contains.Message.ShouldContain(endpoint);
        }

        var open = await Should.ThrowAsync<BlobStoreUnavailableException>(() => S3BlobStore.OpenAsync(Options(own, bucket), _temp, TimeProvider.System, CancellationToken.None));
        open.Message.ShouldContain(bucket);
    }

    [Fact]
    public async Task A_server_that_does_not_answer_gives_a_clear_error_within_the_timeout()
    {
        // Accepts connections and never answers, as an overloaded S3 gateway may.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        var options = S3BlobStoreOptions.Parse($"s3://silent-bucket?endpoint=http://127.0.0.1:{port}&timeout=1", Environment);
        var started = TimeProvider.System.GetTimestamp();

        var error = await Should.ThrowAsync<BlobStoreUnavailableException>(() => S3BlobStore.OpenAsync(options, _temp, TimeProvider.System, CancellationToken.None));

        error.Message.ShouldContain($"s3://silent-bucket/ at http://127.0.0.1:{port}");
        error.Message.ShouldContain("did not answer in time");
        TimeProvider.System.GetElapsedTime(started).ShouldBeLessThan(TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task An_endpoint_that_is_not_s3_is_said_to_be_so()
    {
        // Answers every request 401 with an empty body, as a web service on the wrong port would.
        using var other = new TcpListener(IPAddress.Loopback, 0);
        other.Start();
        var port = ((IPEndPoint)other.LocalEndpoint).Port;
        var answering = Task.Run(async () =>
        {
            while (true)
            {
                using var connection = await other.AcceptTcpClientAsync();
                var stream = connection.GetStream();
                _ = await stream.ReadAsync(new byte[8192]); // the request's first bytes: enough to answer it
                await stream.WriteAsync("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
            }
        });
        var options = S3BlobStoreOptions.Parse($"s3://some-bucket?endpoint=http://127.0.0.1:{port}", Environment);

        var error = await Should.ThrowAsync<BlobStoreUnavailableException>(() => S3BlobStore.OpenAsync(options, _temp, TimeProvider.System, CancellationToken.None));

        error.Message.ShouldContain("it answered HTTP 401 (Unauthorized) with no S3 error: check that the endpoint is an S3 server");
        other.Stop();
        await answering.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    [Fact]
    public async Task A_missing_bucket_is_named()
    {
        var error = await Should.ThrowAsync<BlobStoreUnavailableException>(
            () => S3BlobStore.OpenAsync(Options(_server, "no-such-bucket"), _temp, TimeProvider.System, CancellationToken.None));

        error.Message.ShouldContain("bucket 'no-such-bucket' does not exist there");
    }

    [Theory]
    [InlineData("s3://my-bucket", "my-bucket", "", null, "us-east-1")]
    [InlineData("s3://my-bucket/team/a/?endpoint=http://127.0.0.1:9000&region=eu-west-1", "my-bucket", "team/a/", "http://127.0.0.1:9000/", "eu-west-1")]
    public void Options_are_read_from_the_url(string text, string bucket, string prefix, string? endpoint, string region)
    {
        var options = S3BlobStoreOptions.Parse(text, Environment);

        options.Bucket.ShouldBe(bucket);
        options.Prefix.ShouldBe(prefix);
        options.Endpoint?.ToString().ShouldBe(endpoint);
        options.Region.ShouldBe(region);
        options.AccessKey.ShouldBe(S3Server.AccessKey);
        options.ToString().ShouldNotContain(S3Server.SecretKey);
    }

    [Theory]
    [InlineData("/var/blobs", "expected s3://BUCKET")]
    [InlineData("s3://My_Bucket", "'My_Bucket' is not an S3 bucket name")]
    [InlineData("s3://bucket?endpoint=ftp://x", "endpoint 'ftp://x' is not an http:// or https:// URL")]
    [InlineData("s3://bucket?timeout=soon", "timeout 'soon'")]
    [InlineData("s3://bucket?colour=blue", "'colour' is not a setting")]
    public void A_bad_url_is_refused_with_what_is_wrong(string text, string expected)
    {
        var error = Should.Throw<InvalidBlobStoreException>(() => S3BlobStoreOptions.Parse(text, Environment));

        error.Message.ShouldContain($"--blobs '{text}' is not a blob store");
        error.Message.ShouldContain(expected);
    }

    [Fact]
    public void Missing_credentials_are_refused()
    {
        var error = Should.Throw<InvalidBlobStoreException>(() => S3BlobStoreOptions.Parse("s3://bucket", _ => null));

        error.Message.ShouldContain("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }

    private static string? Environment(string name) => S3Server.Credentials.GetValueOrDefault(name);

    private Task<S3BlobStore> OpenAsync() => S3BlobStore.OpenAsync(Options(), _temp, TimeProvider.System, CancellationToken.None);

    private S3BlobStoreOptions Options() => Options(_server, _bucket);

    private S3BlobStoreOptions Options(S3Server server, string bucket) =>
        S3BlobStoreOptions.Parse($"s3://{bucket}/{_prefix}?endpoint={server.Endpoint}", Environment);

    private async Task PutRawAsync(string key, byte[] bytes)
    {
        using var client = _server.CreateClient();
        await client.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = key, InputStream = new MemoryStream(bytes), UseChunkEncoding = false });
    }

    private sealed class ShiftedTime(TimeSpan ahead) : TimeProvider
    {
        public TimeSpan Ahead { get; set; } = ahead;

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Ahead;
    }
}
