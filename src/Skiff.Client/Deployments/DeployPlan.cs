using Skiff.Client.Api;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;

namespace Skiff.Client.Deployments;

/// <summary>
/// How a release in a local blob store goes live on a location, for every front end (<c>skiff deploy</c>,
/// <c>skiff dev</c>, a CI action, a UI): <see cref="PlanAsync"/> sends every digest of the release in one request,
/// <see cref="UploadAsync"/> uploads only what the server lacks (in parallel, streamed, retried; to the server,
/// or straight into its S3 bucket by pre-signed URLs) with the manifests last, and <see cref="RegisterAsync"/>
/// asks for the release to go live and waits for the outcome. The server decides the deployment's path
/// (full, fast, unchanged) from what it holds.
/// </summary>
/// <remarks>One instance can deploy many times; <c>skiff dev</c> keeps it (and its client's connections) warm between saves.</remarks>
internal sealed class DeployPlan(SkiffClient api, IBlobStore local)
{
    private const int ParallelUploads = 4;

    /// <summary>Reads the release's manifests from the local store and asks the server which of its blobs it lacks.</summary>
    /// <exception cref="BlobNotFoundException">The release or its environment manifest is not in the local store.</exception>
    /// <exception cref="ClientException">The server could not be reached or refused.</exception>
    public async Task<ReleaseUpload> PlanAsync(Digest release, CancellationToken cancellationToken)
    {
        var manifest = await ManifestLoader.LoadReleaseAsync(local, release, cancellationToken).ConfigureAwait(false);
        var environment = await ManifestLoader.LoadEnvironmentAsync(local, manifest.Environment, cancellationToken).ConfigureAwait(false);
        var packages = environment.Packages.Select(p => p.Blob).Concat(manifest.ExperimentalBlobs()).ToHashSet();
        var digests = new[] { release, manifest.Environment, manifest.Source }.Concat(packages).Distinct();
        var answer = await api.FindMissingBlobsAsync(digests, cancellationToken).ConfigureAwait(false);
        var missing = answer.Missing.Select(Digest.Parse).ToList();
        var bytes = 0L;
        foreach (var digest in missing)
        {
            bytes += await local.GetLengthAsync(digest, cancellationToken).ConfigureAwait(false) ?? 0;
        }

        return new ReleaseUpload(release, manifest.Environment, manifest.Source, packages, missing, bytes, DirectUpload.FromAnswer(answer));
    }

    /// <summary>
    /// Uploads what the server lacks: packages and source in parallel, then the environment manifest, then the
    /// release manifest, so the server never holds a manifest whose parts are missing.
    /// </summary>
    /// <param name="upload">What <see cref="PlanAsync"/> found.</param>
    /// <param name="sent">Hears of every chunk read for sending (and of a negative count when an attempt is retried), for progress.</param>
    /// <param name="cancellationToken">Stops the uploads; what was stored stays (the server checked it).</param>
    /// <exception cref="ClientException">The server or its blob store could not be reached, or refused a blob.</exception>
    public async Task UploadAsync(ReleaseUpload upload, Action<long>? sent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(upload);
        var manifests = new[] { upload.Environment, upload.Release };
        var parts = upload.Missing.Where(d => !manifests.Contains(d)).ToList();
        await Parallel.ForEachAsync(parts, new ParallelOptions { MaxDegreeOfParallelism = ParallelUploads, CancellationToken = cancellationToken },
            async (digest, ct) => await api.UploadAsync(local, digest, upload.Direct.GetValueOrDefault(digest), sent, ct).ConfigureAwait(false)).ConfigureAwait(false);
        foreach (var manifest in manifests.Where(upload.Missing.Contains))
        {
            await api.UploadAsync(local, manifest, upload.Direct.GetValueOrDefault(manifest), sent, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Registers the deployment of an uploaded release and waits for its outcome: the answer comes once it is live
    /// or failed (the previous version then stays live). A deploy the server has accepted completes there even when
    /// the caller stops waiting.
    /// </summary>
    /// <param name="upload">What was uploaded.</param>
    /// <param name="location">Where (created on its first deployment).</param>
    /// <param name="details">Who, the memory limit, provenance and the caller's stage timings; location and release are taken from the other arguments.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <exception cref="ClientException">The server refused (a bad location name or memory limit, a release with blobs missing) or could not be reached.</exception>
    public Task<Deployment> RegisterAsync(ReleaseUpload upload, string location, DeploymentRequest? details, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(upload);
        var request = (details ?? new DeploymentRequest(location, upload.Release.ToString())) with
        {
            Location = location,
            Release = upload.Release.ToString(),
            Uploaded = new UploadSummary(upload.Missing.Count, upload.MissingBytes),
        };
        return api.DeployAsync(request, cancellationToken);
    }
}
