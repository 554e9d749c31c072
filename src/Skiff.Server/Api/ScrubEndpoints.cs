using Microsoft.AspNetCore.Http.HttpResults;
using Skiff.Client.Api;
using Skiff.Server.Blobs;

namespace Skiff.Server.Api;

/// <summary>What the background scrub of the blob store has found (<see cref="Scrubber"/>).</summary>
internal static class ScrubEndpoints
{
    public static void Map(IEndpointRouteBuilder api, Scrubber scrubber)
    {
        api.MapGet("/blobs/scrub", async Task<Ok<ScrubReport>> (CancellationToken cancellationToken) =>
        {
            var quarantined = await scrubber.ReportAsync(cancellationToken).ConfigureAwait(false);
            var pass = scrubber.LastPass is { } last
                ? new ScrubPassReport(last.Started, last.Finished, last.Blobs, last.Bytes, [.. last.Quarantined.Select(d => d.ToString())], last.Error)
                : null;
            return TypedResults.Ok(new ScrubReport(
                scrubber.BytesPerSecond,
                pass,
                [.. quarantined.Select(q => new QuarantinedBlobReport(q.Blob.ToString(), q.Restored, [.. q.Releases.Select(r => r.ToString())], q.Locations))]));
        })
            .WithSummary("The background scrub of the blob store: its rate, its last pass, and every quarantined blob with the releases and locations it affects.");
    }
}
