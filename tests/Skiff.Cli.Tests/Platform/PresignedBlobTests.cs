using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Skiff.Agent.Blobs;
using Skiff.Client;
using Skiff.Client.Api;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Server.Blobs;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>
/// The pre-signed URL protocol of a server with blobs in S3 (s3rver), at the HTTP boundary: what a client may
/// put where, what a commit checks, where readers are sent, and how the CLI and the agent report an S3 they cannot reach.
/// </summary>
public sealed class PresignedBlobTests : IAsyncLifetime
{
    private const string Prefix = "platform/";
    private readonly Workspace _workspace = new();
    private readonly HttpClient _s3Client = new(new SocketsHttpHandler { AllowAutoRedirect = false });
    private S3Server _s3 = null!;
    private string _bucket = null!;
    private RunningServer _server = null!;
    private HttpClient _api = null!;

    public async Task InitializeAsync()
    {
        _s3 = await S3Server.Shared;
        _bucket = await _s3.CreateBucketAsync();
        _server = await SkiffServerHost.StartAsync(
            new ServerOptions
            {
                DataDirectory = _workspace.PathTo("server"),
                Port = 0,
                S3Blobs = S3BlobStoreOptions.Parse($"s3://{_bucket}/{Prefix}?endpoint={_s3.Endpoint}", name => S3Server.Credentials.GetValueOrDefault(name)),
            },
            TimeProvider.System,
            CancellationToken.None);
        _api = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = _server.Url };
        _api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _server.Token);
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        _s3Client.Dispose();
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // over S3BlobStore.SmallUpload: committed by copies inside S3, not from the server's memory
    public async Task A_blob_put_to_its_url_and_committed_is_stored_and_readers_are_sent_to_s3_for_it(bool large)
    {
        var bytes = SafeArchive(large ? Convert.ToBase64String(RandomNumberGenerator.GetBytes(2 * S3BlobStore.SmallUpload)) : "hello");
        (bytes.Length > S3BlobStore.SmallUpload).ShouldBe(large);
        var digest = Digest.Compute(bytes);

        var upload = await AskToUploadAsync(digest);
        using var put = await _s3Client.PutAsync(upload.Url, new ByteArrayContent(bytes));
        using var commit = await CommitAsync(digest, upload.Id);
        using var again = await CommitAsync(digest, upload.Id);
        using var read = await _api.GetAsync($"api/v1/blobs/{digest}");
        using var fetched = await _s3Client.GetAsync(read.Headers.Location);

        put.StatusCode.ShouldBe(HttpStatusCode.OK);
        upload.Url.GetLeftPart(UriPartial.Authority).ShouldBe(_s3.Endpoint.GetLeftPart(UriPartial.Authority));
        commit.StatusCode.ShouldBe(HttpStatusCode.Created, await commit.Content.ReadAsStringAsync());
        again.StatusCode.ShouldBe(HttpStatusCode.Conflict, "the staging object went with the first commit");
        read.StatusCode.ShouldBe(HttpStatusCode.TemporaryRedirect);
        read.Headers.Location!.GetLeftPart(UriPartial.Authority).ShouldBe(_s3.Endpoint.GetLeftPart(UriPartial.Authority));
        (await fetched.Content.ReadAsByteArrayAsync()).ShouldBe(bytes);
        (await _s3.KeysAsync(_bucket, Prefix)).ShouldBe([$"{Prefix}blobs/sha256/{digest.Hex}"]);
    }

    [Fact]
    public async Task A_commit_of_other_bytes_than_promised_is_refused_and_the_bucket_keeps_nothing()
    {
        var promised = SafeArchive();
        var other = SafeArchive("other");
        var digest = Digest.Compute(promised);

        var upload = await AskToUploadAsync(digest);
        using var put = await _s3Client.PutAsync(upload.Url, new ByteArrayContent(other));
        using var commit = await CommitAsync(digest, upload.Id);

        put.StatusCode.ShouldBe(HttpStatusCode.OK);
        commit.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await ErrorAsync(commit)).ShouldContain($"did not match that digest (got {Digest.Compute(other)}); nothing was stored");
        (await _server.Blobs.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
        (await _s3.KeysAsync(_bucket, Prefix)).ShouldBeEmpty();
    }

    [Fact]
    public async Task An_unsafe_archive_is_refused_at_commit_and_the_bucket_keeps_nothing()
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Ustar, leaveOpen: true))
        {
            tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "../escape.txt") { DataStream = new MemoryStream("x"u8.ToArray()) });
        }

        var bytes = buffer.ToArray();
        var digest = Digest.Compute(bytes);

        var upload = await AskToUploadAsync(digest);
        using var put = await _s3Client.PutAsync(upload.Url, new ByteArrayContent(bytes));
        using var commit = await CommitAsync(digest, upload.Id);

        commit.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await ErrorAsync(commit)).ShouldContain("../escape.txt");
        (await _server.Blobs.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
        (await _s3.KeysAsync(_bucket, Prefix)).ShouldBeEmpty();
    }

    [Fact]
    public async Task The_server_takes_no_blob_bytes_itself_and_commits_only_uploads_it_handed_out()
    {
        var bytes = SafeArchive();
        var digest = Digest.Compute(bytes);

        using var put = await _api.PutAsync($"api/v1/blobs/{digest}", new ByteArrayContent(bytes));
        using var unknown = await CommitAsync(digest, Guid.NewGuid().ToString("N"));
        using var outside = await CommitAsync(digest, "../blobs/sha256/" + digest.Hex);

        put.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await ErrorAsync(put)).ShouldContain("takes no blob bytes itself");
        unknown.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        (await ErrorAsync(unknown)).ShouldContain("PUT its bytes to the URL");
        outside.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        (await _s3.KeysAsync(_bucket, Prefix)).ShouldBeEmpty();
    }

    [Fact]
    public async Task The_agent_fetches_from_s3_without_the_token_and_names_an_s3_it_cannot_reach()
    {
        var bytes = SafeArchive();
        var digest = Digest.Compute(bytes);
        await _server.Blobs.PutAsync(digest, new MemoryStream(bytes), CancellationToken.None);
        var seen = new List<HttpRequestMessage>();
        using var http = new HttpClient(new Recording(seen, new SocketsHttpHandler { AllowAutoRedirect = false }));
        var source = new HttpBlobSource(http, _server.Url, _server.Token);

        await using (var stream = await source.OpenReadAsync(digest, CancellationToken.None))
        {
            Digest.Compute(await ReadAllAsync(stream)).ShouldBe(digest);
        }

        seen.Count.ShouldBe(2);
        seen[0].Headers.Authorization.ShouldNotBeNull();
        seen[1].RequestUri!.GetLeftPart(UriPartial.Authority).ShouldBe(_s3.Endpoint.GetLeftPart(UriPartial.Authority));
        seen[1].Headers.Authorization.ShouldBeNull();

        // S3 gone between the server's answer and the agent's fetch.
        var closed = ClosedPort();
        using var redirecting = new HttpClient(new Redirecting(new Uri($"http://127.0.0.1:{closed}/bucket/key?X-Amz-Signature=secret")));
        var error = await Should.ThrowAsync<BlobStoreFetchException>(() => new HttpBlobSource(redirecting, _server.Url, _server.Token).OpenReadAsync(digest, CancellationToken.None));
        error.Message.ShouldStartWith($"fetching blob {digest} from the server's blob store at http://127.0.0.1:{closed} failed (");
        error.Message.ShouldNotContain("secret");
    }

    [Fact]
    public async Task The_cli_names_an_s3_it_cannot_reach_and_nothing_is_committed()
    {
        var bytes = SafeArchive();
        var local = new FileBlobStore(_workspace.PathTo("local"));
        var digest = await local.PutAsync(new MemoryStream(bytes), CancellationToken.None);
        var closed = ClosedPort();
        using var client = new SkiffClient(_server.Url, _server.Token);

        var error = await Should.ThrowAsync<ClientException>(() =>
            client.UploadAsync(local, digest, new DirectUpload(Guid.NewGuid().ToString("N"), new Uri($"http://127.0.0.1:{closed}/bucket/staging?X-Amz-Signature=secret")), sent: null, CancellationToken.None));

        error.Message.ShouldStartWith($"could not upload blob {digest} to the server's blob store at http://127.0.0.1:{closed} (");
        error.Message.ShouldContain("Nothing was recorded as uploaded");
        error.Message.ShouldNotContain("secret");
        (await _server.Blobs.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task An_s3_that_stops_answering_fails_the_cli_upload_and_the_agent_fetch_with_a_line_naming_it()
    {
        var bytes = SafeArchive();
        var local = new FileBlobStore(_workspace.PathTo("local"));
        var digest = await local.PutAsync(new MemoryStream(bytes), CancellationToken.None);
        // Accepts connections (the kernel does, from its backlog) and never answers.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var silentPort = ((IPEndPoint)silent.LocalEndpoint).Port;
        // Answers with headers and the first bytes of a blob, then sends nothing more.
        using var halting = new TcpListener(IPAddress.Loopback, 0);
        halting.Start();
        var haltingPort = ((IPEndPoint)halting.LocalEndpoint).Port;
        var halted = Task.Run(async () =>
        {
            using var connection = await halting.AcceptTcpClientAsync();
            var stream = connection.GetStream();
            if (await stream.ReadAsync(new byte[4096]) == 0)
            {
                return;
            }

            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {bytes.Length}\r\n\r\n"));
            await stream.WriteAsync(bytes.AsMemory(0, 10));
            // Holds the connection open, sending nothing, until the agent gives up and closes it.
            while (await stream.ReadAsync(new byte[1]) > 0)
            {
            }
        });
        using var client = new SkiffClient(_server.Url, _server.Token) { BlobStoreStallTimeout = TimeSpan.FromMilliseconds(500) };
        using var toSilent = new HttpClient(new Redirecting(new Uri($"http://127.0.0.1:{silentPort}/bucket/key")));
        using var toHalting = new HttpClient(new Redirecting(new Uri($"http://127.0.0.1:{haltingPort}/bucket/key")));
        var stall = TimeSpan.FromMilliseconds(500);

        var upload = await Should.ThrowAsync<ClientException>(() =>
            client.UploadAsync(local, digest, new DirectUpload(Guid.NewGuid().ToString("N"), new Uri($"http://127.0.0.1:{silentPort}/bucket/staging")), sent: null, CancellationToken.None));
        var headers = await Should.ThrowAsync<BlobStoreFetchException>(() =>
            new HttpBlobSource(toSilent, _server.Url, _server.Token) { StallTimeout = stall }.OpenReadAsync(digest, CancellationToken.None));
        var body = await Should.ThrowAsync<BlobStoreFetchException>(async () =>
        {
            await using var stream = await new HttpBlobSource(toHalting, _server.Url, _server.Token) { StallTimeout = stall }.OpenReadAsync(digest, CancellationToken.None);
            await stream.CopyToAsync(Stream.Null);
        });

        upload.Message.ShouldStartWith($"the server's blob store at http://127.0.0.1:{silentPort} stopped answering while blob {digest} was uploaded (nothing moved for 0.5 s, three times)");
        headers.Message.ShouldStartWith($"fetching blob {digest} from the server's blob store at http://127.0.0.1:{silentPort} failed (it sent nothing for 0.5 s)");
        body.Message.ShouldStartWith($"fetching blob {digest} from the server's blob store at http://127.0.0.1:{haltingPort} failed (it stopped sending the blob for 0.5 s)");
        (await _server.Blobs.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
        halting.Stop();
        await halted.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private async Task<DirectUpload> AskToUploadAsync(Digest digest)
    {
        using var response = await _api.PostAsJsonAsync("api/v1/blobs/missing", new { digests = new[] { digest.ToString() } });
        response.EnsureSuccessStatusCode();
        var answer = System.Text.Json.JsonSerializer.Deserialize(await response.Content.ReadAsStringAsync(), ApiJson.Default.MissingBlobs)!;
        answer.Missing.ShouldBe([digest.ToString()]);
        return DirectUpload.FromAnswer(answer)[digest];
    }

    private Task<HttpResponseMessage> CommitAsync(Digest digest, string upload) =>
        _api.PostAsJsonAsync($"api/v1/blobs/{digest}/commit", new { upload });

    private static async Task<string> ErrorAsync(HttpResponseMessage response) =>
        (string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;

    /// <summary>A small gzip'd tar as <c>skiff build</c> would accept it.</summary>
    private static byte[] SafeArchive(string content = "hello")
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Ustar, leaveOpen: true))
        {
            tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "lib/a.txt") { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) });
        }

        return buffer.ToArray();
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    /// <summary>A port on 127.0.0.1 that nothing listens on (it was free a moment ago).</summary>
    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Keeps every request sent, headers as sent.</summary>
    private sealed class Recording(List<HttpRequestMessage> seen, HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            seen.Add(request);
            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>A server that sends every blob request to <paramref name="target"/>; other requests go out for real.</summary>
    private sealed class Redirecting(Uri target) : DelegatingHandler(new SocketsHttpHandler { AllowAutoRedirect = false })
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri!.AbsolutePath.Contains("/api/v1/blobs/", StringComparison.Ordinal))
            {
                var response = new HttpResponseMessage(HttpStatusCode.TemporaryRedirect);
                response.Headers.Location = target;
                return Task.FromResult(response);
            }

            return base.SendAsync(request, cancellationToken);
        }
    }
}
