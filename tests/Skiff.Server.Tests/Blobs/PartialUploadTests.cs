using System.Net;
using System.Net.Http.Headers;
using Skiff.Server.Hosting;
using Skiff.Testing;

namespace Skiff.Server.Tests.Blobs;

public sealed class PartialUploadTests
{
    [Fact]
    public async Task Gc_deletes_partial_uploads_older_than_an_hour_and_spares_younger_ones()
    {
        using var workspace = new Workspace();
        await using var server = await SkiffServerHost.StartAsync(new ServerOptions { DataDirectory = workspace.PathTo("server"), Port = 0 }, TimeProvider.System, CancellationToken.None);
        // What a server killed in the middle of an upload leaves in the store's temp folder, and one being written now.
        var temp = workspace.PathTo("server", "blobs", "tmp");
        var abandoned = Path.Combine(temp, "abandoned.tmp");
        var inFlight = Path.Combine(temp, "in-flight.tmp");
        await File.WriteAllBytesAsync(abandoned, new byte[1000]);
        await File.WriteAllBytesAsync(inFlight, new byte[1000]);
        File.SetLastWriteTimeUtc(abandoned, DateTime.UtcNow.AddHours(-2));

        using var http = new HttpClient { BaseAddress = server.Url };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", server.Token);
        using var response = await http.PostAsync("api/v1/gc", null);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        File.Exists(abandoned).ShouldBeFalse();
        File.Exists(inFlight).ShouldBeTrue();
    }
}
