using System.IO.Compression;
using Skiff.Core.Archives;

namespace Skiff.Core.Tests.Archives;

public sealed class DeterministicGzipStreamTests
{
    [Fact]
    public async Task NothingWritten_IsStillAValidGzipOfNothing()
    {
        var bytes = await GzipAsync(async _ => await Task.CompletedTask);

        (await GunzipAsync(bytes)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Output_DoesNotDependOnHowWritesAreChunkedOrFlushed()
    {
        var content = Some.Bytes(200_000);

        var whole = await GzipAsync(async gzip => await gzip.WriteAsync(content));
        var pieces = await GzipAsync(async gzip =>
        {
            foreach (var chunk in content.Chunk(4093))
            {
                await gzip.WriteAsync(chunk);
                await gzip.FlushAsync();
            }
        });

        pieces.ShouldBe(whole);
        (await GunzipAsync(whole)).ShouldBe(content);
    }

    [Fact]
    public async Task SyncWrites_GiveTheSameBytesAsAsyncWrites()
    {
        var content = Some.Bytes(50_000);
        using var destination = new MemoryStream();
        using (var gzip = new DeterministicGzipStream(destination))
        {
            gzip.Write(content);
            gzip.Flush();
        }

        destination.ToArray().ShouldBe(await GzipAsync(async gzip => await gzip.WriteAsync(content)));
    }

    private static async Task<byte[]> GzipAsync(Func<Stream, Task> write)
    {
        using var destination = new MemoryStream();
        await using (var gzip = new DeterministicGzipStream(destination))
        {
            await write(gzip);
        }

        return destination.ToArray();
    }

    private static async Task<byte[]> GunzipAsync(byte[] bytes)
    {
        using var output = new MemoryStream();
        await using (var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress))
        {
            await gzip.CopyToAsync(output);
        }

        return output.ToArray();
    }
}
