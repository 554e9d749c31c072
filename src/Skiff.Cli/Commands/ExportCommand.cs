using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Skiff.Agent.Blobs;
using Skiff.Cli.Client;
using Skiff.Cli.Export;
using Skiff.Client;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Cli.Commands;

/// <summary><c>skiff export RELEASE --oci FILE --base BASE</c> (docs/export.md).</summary>
internal static class ExportCommand
{
    private const string Current = "@current";

    public static Command Create()
    {
        var release = new Argument<string>("release")
        {
            Description = "The release: its id (sha256:…), a unique prefix of its hex digits as `skiff history` shows it, or LOCATION@current for a location's live release.",
        };
        var oci = new Option<string>("--oci") { Description = "Write an OCI image archive to this file (load it with `podman load -i FILE`).", HelpName = "file", Required = true };
        var baseImage = new Option<string>("--base")
        {
            Description = "The base image, with the .NET runtime the release needs: an OCI image layout folder or archive (scripts/oci-base.sh builds one).",
            HelpName = "layout",
            Required = true,
        };
        var tag = new Option<string?>("--tag") { Description = "The name loading tools give the image (default skiff-release:<12 hex digits of the release>); not part of its digest.", HelpName = "name" };
        var json = new Option<bool>("--json") { Description = "Print what was written as JSON: image and config digests, archive, layers." };
        var store = CommonOptions.Folder("--store", "The local blob store: blobs found there are not fetched from the server, fetched ones are kept there.", "store");
        var client = new ClientOptions();
        var command = new Command("export", "Write a release as an OCI image: the base image, the environment in a few stable layers, the source; its entrypoint runs the release as the agent does.")
        {
            release, oci, baseImage, tag, json, store,
        };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            var server = new LazyServer(() => ClientConfig.Resolve(parse.GetValue(client.Server), parse.GetValue(client.Token), parse.GetValue(client.Data)));
            try
            {
                var digest = await ResolveAsync(server, parse.GetValue(release)!, cancellationToken).ConfigureAwait(false);
                var blobs = new FetchingBlobStore(new FileBlobStore(parse.GetValue(store)!), server);
                var image = await ReleaseExporter.ExportAsync(
                    blobs, digest, parse.GetValue(baseImage)!, parse.GetValue(oci)!, parse.GetValue(tag) ?? $"skiff-release:{digest.Short}", cancellationToken).ConfigureAwait(false);
                Print(image, digest, parse.GetValue(json));
                return 0;
            }
            finally
            {
                server.Dispose();
            }
        }));
        return command;
    }

    /// <summary>The release's digest: given in full, found in the locations' histories by prefix, or a location's live one.</summary>
    private static async Task<Digest> ResolveAsync(LazyServer server, string text, CancellationToken cancellationToken)
    {
        if (Digest.TryParse(text, out var digest))
        {
            return digest;
        }

        if (text.EndsWith(Current, StringComparison.Ordinal))
        {
            var location = text[..^Current.Length];
            var locations = await server.Api.ListLocationsAsync(cancellationToken).ConfigureAwait(false);
            return locations.FirstOrDefault(l => l.Location == location) switch
            {
                null => throw new ClientException($"there is no location '{location}' on {server.Api.Server}; `skiff locations` lists them.", usage: true),
                { Release: null } => throw new ClientException($"location '{location}' has no live release yet; deploy one, or name a release from `skiff history {location}`."),
                var live => Digest.Parse(live.Release),
            };
        }

        var prefix = text.StartsWith("sha256:", StringComparison.Ordinal) ? text["sha256:".Length..] : text;
        if (prefix.Length < 6 || !prefix.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
        {
            throw new ClientException($"'{text}' is not a release: pass its id (sha256:<64 hex digits>), at least 6 of its leading hex digits, or LOCATION@current.", usage: true);
        }

        var matches = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var location in await server.Api.ListLocationsAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var deployment in await server.Api.ListDeploymentsAsync(location.Location, 1000, cancellationToken).ConfigureAwait(false))
            {
                if (Digest.TryParse(deployment.Release, out var deployed) && deployed.Hex.StartsWith(prefix, StringComparison.Ordinal))
                {
                    matches.Add(deployment.Release);
                }
            }
        }

        return matches.Count switch
        {
            1 => Digest.Parse(matches.Min!),
            0 => throw new ClientException($"no release deployed on {server.Api.Server} starts with {prefix}; `skiff history LOCATION` shows them (a release only built, never deployed, is exported by its full id).", usage: true),
            _ => throw new ClientException($"{matches.Count} releases start with {prefix} ({string.Join(", ", matches.Select(m => m[7..19]))}); give more digits.", usage: true),
        };
    }

    private static void Print(ExportedImage image, Digest release, bool json)
    {
        if (json)
        {
            Console.WriteLine(new JsonObject
            {
                ["release"] = release.ToString(),
                ["image"] = image.Image.ToString(),
                ["config"] = image.Config.ToString(),
                ["archive"] = image.Archive,
                ["bytes"] = image.Bytes,
                ["layers"] = new JsonArray([.. image.Layers.Select(l => new JsonObject
                {
                    ["kind"] = l.Kind,
                    ["digest"] = l.Digest.ToString(),
                    ["size"] = l.Size,
                    ["description"] = l.Description,
                })]),
            }.ToJsonString());
            return;
        }

        Console.WriteLine($"wrote {image.Archive}: image {image.Image} of release {release.Short}, {image.Layers.Count} layers, {Megabytes(image.Bytes)}");
        foreach (var layer in image.Layers)
        {
            var description = layer.Description.Length > 90 ? layer.Description[..87] + "..." : layer.Description;
            Console.WriteLine($"  {layer.Kind,-12} {layer.Digest.Short}  {Megabytes(layer.Size),10}  {description}");
        }

        Console.WriteLine($"load it with `podman load -i {image.Archive}`, then `podman run --rm IMAGE run JOB [--param NAME=VALUE]...`");
    }

    private static string Megabytes(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:0.0} MiB");

    /// <summary>
    /// The server, reached only when something needs it: a release given by prefix or location, or a blob the local store
    /// lacks. A release built here and exported by its id needs no server at all.
    /// </summary>
    private sealed class LazyServer(Func<ClientConfig> resolve) : IBlobSource, IDisposable
    {
        private readonly Lazy<ClientConfig> _config = new(resolve);
        private SkiffClient? _api;
        private HttpClient? _http;

        public SkiffClient Api => _api ??= _config.Value.Connect();

        public Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken)
        {
            // Redirects (a server whose blobs are in S3) are followed by HttpBlobSource itself, without the token.
            _http ??= new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(10) }) { Timeout = Timeout.InfiniteTimeSpan };
            return new HttpBlobSource(_http, _config.Value.Server, _config.Value.Token).OpenReadAsync(digest, cancellationToken);
        }

        public void Dispose()
        {
            _api?.Dispose();
            _http?.Dispose();
        }
    }
}
