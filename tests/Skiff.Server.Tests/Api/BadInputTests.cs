using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Core.Archives;
using Skiff.Core.Manifests;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Server.Tests.Api;

/// <summary>The bad inputs the attack pass found answered with an empty body, a 500 or silence, each against a real server.</summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private readonly Workspace _workspace = new();
    private RunningServer _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = _workspace.PathTo("server"), Port = 0 }, TimeProvider.System, CancellationToken.None);
        _http = new HttpClient { BaseAddress = _server.Url };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _server.Token);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _workspace.Dispose();
    }

    [Fact]
    public async Task The_run_search_takes_empty_filter_fields_as_any_as_the_web_UI_sends_them()
    {
        var answer = await _http.GetAsync("api/v1/runs/search?location=&job=&status=&offset=0&limit=25");
        answer.StatusCode.ShouldBe(HttpStatusCode.OK, await answer.Content.ReadAsStringAsync());
        (await _http.GetAsync("api/v1/runs/search?status=done")).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var typo = await _http.GetAsync("api/v1/runs/search?location=no-such-place");
        typo.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        ((string)JsonNode.Parse(await typo.Content.ReadAsStringAsync())!["error"]!).ShouldContain("there is no location 'no-such-place'");
    }

    [Theory]
    [InlineData("GET", "api/v1/runs?limit=abc", null, null, 400, "\"limit\" must be a whole number, not \"abc\"")]
    [InlineData("GET", "api/v1/runs?limit=99999999999", null, null, 400, "\"limit\" must be a whole number, not \"99999999999\"")]
    [InlineData("GET", "api/v1/runs?limit=-1", null, null, 400, "limit=-1 is out of range: give a whole number from 1 to 1000")]
    [InlineData("GET", "api/v1/runs/r-1/events?after=-5", null, null, 400, "after=-5 is out of range")]
    [InlineData("GET", "api/v1/runs/search?limit=501", null, null, 400, "from 1 to 500")]
    [InlineData("POST", "api/v1/gc", "application/json", "{not json", 400, "POST /api/v1/gc takes no request body")]
    [InlineData("POST", "api/v1/runs", "application/json", """{"location":"a","job":"b","extra":1}""", 400, "'extra' could not be mapped")]
    [InlineData("POST", "api/v1/deployments", "application/json", """{"location":"a","release":"b","replica":2}""", 400, "'replica' could not be mapped")]
    [InlineData("POST", "api/v1/runs", "application/json", """{"location":"a","job":".."}""", 400, "'..' is not a job name")]
    [InlineData("POST", "api/v1/runs", "application/json", """{"location":"a","job":"x\u0007y"}""", 400, "'x?y' is not a job name")]
    [InlineData("POST", "api/v1/runs", "application/json", """{"location":"..","job":"x"}""", 400, "'..' is not a location name")]
    [InlineData("POST", "api/v1/runs", "text/plain", """{"location":"a","job":"x"}""", 415, "send blob bytes as application/octet-stream and everything else as application/json")]
    [InlineData("PUT", "api/v1/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000", "application/json", "{}", 415, "does not take a body of type 'application/json'")]
    [InlineData("DELETE", "api/v1/runs", null, null, 405, "api/v1/runs does not take DELETE; it takes GET, POST")]
    [InlineData("GET", "api/v1/nothing-here", null, null, 404, "there is no GET /api/v1/nothing-here")]
    [InlineData("POST", "api/v1/deployments", "application/json", """{"location":"a","location":"b","release":"c"}""", 400, "Duplicate property 'location'")]
    [InlineData("POST", "api/v1/deployments", "application/json", """{"location":"a","release":"c","uploaded":{"blobs":-1,"bytes":5}}""", 400, "\"uploaded.blobs\" must be zero or more, not -1")]
    [InlineData("POST", "api/v1/deployments", "application/json", """{"location":"a","release":"c","timings_ms":{"build":-1}}""", 400, "\"timings_ms.build\" must be zero or more, not -1")]
    [InlineData("POST", "api/v1/runs", "application/json", """{"location":"a","job":"b","params":{"x":1,"x":2}}""", 400, "Duplicate property 'x'")]
    [InlineData("PATCH", "api/v1/locations/a", "application/json", """{"max_concurrent":2,"max_concurrent":5}""", 400, "Duplicate property 'max_concurrent'")]
    [InlineData("M1234", "api/v1/runs", null, null, 405, "this server takes only GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS; 'M1234' is none of them")]
    [InlineData("GET", "api/v1/audit?limit=0", null, null, 400, "limit=0 is out of range: give a whole number from 1 to 1000")]
    [InlineData("POST", "api/v1/tokens", "application/json", """{"name":"t1","role":"read","secret":"mine"}""", 400, "'secret' could not be mapped")]
    public async Task A_bad_request_is_refused_with_a_message_that_says_what_was_wrong(string method, string path, string? contentType, string? body, int status, string expected)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType!);
        }

        using var response = await _http.SendAsync(request);

        ((int)response.StatusCode).ShouldBe(status);
        (await ErrorAsync(response)).ShouldContain(expected, Case.Sensitive);
    }

    [Fact]
    public async Task A_release_manifest_whose_entry_assembly_leaves_the_source_folder_is_refused_and_not_stored()
    {
        var manifest = new ReleaseManifest(ReleaseManifest.CurrentSchema, Digest.Compute("e"u8), Digest.Compute("s"u8), "../../tmp/evil.dll", null).ToBytes();
        var digest = Digest.Compute(manifest);

        using var response = await PutAsync(digest, manifest);

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await ErrorAsync(response)).ShouldContain("its entry_assembly '../../tmp/evil.dll' is not a plain .dll file name");
        (await _server.Blobs.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task A_release_manifest_with_an_experimental_package_id_skiff_would_never_write_is_refused_and_not_stored()
    {
        var manifest = new ReleaseManifest(ReleaseManifest.CurrentSchema, Digest.Compute("e"u8), Digest.Compute("s"u8), "App.dll", null, [new PackageEntry("Two Words", "1.0.0", "s", Digest.Compute("p"u8))]).ToBytes();
        var digest = Digest.Compute(manifest);

        using var response = await PutAsync(digest, manifest);

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await ErrorAsync(response)).ShouldContain("its experimental package id 'Two Words' is not a NuGet package id");
        (await _server.Blobs.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task A_deploy_of_a_release_whose_entry_assembly_is_not_in_its_source_is_refused_and_records_nothing()
    {
        var source = await ArchiveAsync(("App.dll", 10));
        var environment = EnvironmentManifest.Create("net10.0", "linux-x64", ["Microsoft.NETCore.App"], "default", []).ToBytes();
        var release = ReleaseManifest.Create(Digest.Compute(environment), Digest.Compute(source), "Other.dll", sdkVersion: null).ToBytes();
        foreach (var blob in (byte[][])[source, environment, release])
        {
            using var put = await PutAsync(Digest.Compute(blob), blob);
            put.StatusCode.ShouldBe(HttpStatusCode.Created);
        }

        using var response = await _http.PostAsync(
            "api/v1/deployments",
            new StringContent(new JsonObject { ["location"] = "app", ["release"] = Digest.Compute(release).ToString() }.ToJsonString(), Encoding.UTF8, "application/json"));

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await ErrorAsync(response)).ShouldContain($"its entry_assembly 'Other.dll' is not a file of its source blob {Digest.Compute(source)}");
        (await _server.Store.GetReleaseAsync(Digest.Compute(release), CancellationToken.None)).ShouldBeNull();
        (await _server.Store.ListLocationsAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task An_archive_of_1_GiB_of_zeros_is_refused_by_default_and_not_stored()
    {
        var bomb = await ZerosArchiveAsync(1L << 30);
        var digest = Digest.Compute(bomb);
        // About 1% of what it expands to, even at the fastest level: the point of a bomb.
        bomb.Length.ShouldBeLessThan(16 << 20);

        using var response = await PutAsync(digest, bomb);

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await ErrorAsync(response)).ShouldContain($"past the limit of {1L << 30} bytes");
        (await _server.Blobs.ContainsAsync(digest, CancellationToken.None)).ShouldBeFalse();
    }

    private async Task<HttpResponseMessage> PutAsync(Digest digest, byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return await _http.PutAsync($"api/v1/blobs/{digest}", content);
    }

    /// <summary>A real archive of files of zeros, the files sparse on disk so that a GiB costs no space.</summary>
    private async Task<byte[]> ArchiveAsync(params (string Path, long Length)[] files)
    {
        var folder = _workspace.PathTo("files", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var entries = new List<ArchiveFile>();
        foreach (var (path, length) in files)
        {
            using (var file = File.Create(Path.Combine(folder, path)))
            {
                file.SetLength(length);
            }

            entries.Add(new ArchiveFile(path, Path.Combine(folder, path)));
        }

        using var buffer = new MemoryStream();
        await ArchiveWriter.WriteAsync(buffer, entries, CancellationToken.None);
        return buffer.ToArray();
    }

    /// <summary>
    /// A tar.gz of one file of zeros, compressed at the fastest level: as a bomb would be made, and in a second
    /// rather than the most part of a minute <see cref="ArchiveWriter"/>'s optimal level takes for a GiB.
    /// </summary>
    private static async Task<byte[]> ZerosArchiveAsync(long length)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Ustar, leaveOpen: true))
        {
            using var zeros = new ZeroStream(length);
            await tar.WriteEntryAsync(new UstarTarEntry(TarEntryType.RegularFile, "zeros.bin") { DataStream = zeros, Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
        }

        return buffer.ToArray();
    }

    private static async Task<string> ErrorAsync(HttpResponseMessage response) =>
        (string?)JsonNode.Parse(await response.Content.ReadAsStringAsync())?["error"] ?? "";
}

/// <summary>A readable stream of <c>length</c> zero bytes that holds none of them.</summary>
internal sealed class ZeroStream(long length) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position { get; set; }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = (int)Math.Min(count, length - Position);
        Array.Clear(buffer, offset, n);
        Position += n;
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => Position + offset,
        _ => length + offset,
    };

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
