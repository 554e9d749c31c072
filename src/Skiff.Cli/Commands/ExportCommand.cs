using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Skiff.Agent.Blobs;
using Skiff.Cli.Client;
using Skiff.Cli.Export;
using Skiff.Cli.Export.Registry;
using Skiff.Client;
using Skiff.Core;
using Skiff.Core.Blobs;

namespace Skiff.Cli.Commands;

/// <summary><c>skiff export RELEASE --base BASE --oci FILE | --push REGISTRY/NAME[:TAG]</c> (docs/export.md).</summary>
internal static class ExportCommand
{
    private const string Current = "@current";

    public static Command Create()
    {
        var release = new Argument<string>("release")
        {
            Description = "The release: its id (sha256:…), a unique prefix of its hex digits as `skiff history` shows it, or LOCATION@current for a location's live release.",
        };
        var oci = new Option<string?>("--oci") { Description = "Write an OCI image archive to this file (load it with `podman load -i FILE`).", HelpName = "file" };
        var push = new Option<string?>("--push")
        {
            Description = "Push the image to a registry as REGISTRY/NAME[:TAG] (default tag: 12 hex digits of the release); only blobs the registry lacks are uploaded.",
            HelpName = "reference",
        };
        var user = new Option<string?>("--registry-user")
        {
            Description = $"The user to push as; the password is read from {RegistryCredentials.PasswordVariable}. Without it, podman's or docker's login for the registry is used (auth.json), else none.",
            HelpName = "user",
        };
        var authFile = new Option<string?>("--authfile") { Description = "Read the registry login from this auth file only (as podman's --authfile; default: REGISTRY_AUTH_FILE, podman's and docker's own).", HelpName = "file" };
        var insecure = new Option<bool>("--insecure-registry") { Description = "Allow a registry without TLS (plain http) or with a certificate that does not verify, as podman's --tls-verify=false." };
        var pushTimeout = new Option<string?>("--push-timeout")
        {
            Description = $"How long the registry may go without answering a request or taking more bytes of an upload before the push fails, e.g. 30s or 5m; an upload that is slow but moving is never cut off. Default {RegistryClient.DefaultStallTimeout.TotalSeconds:0}s.",
            HelpName = "duration",
        };
        pushTimeout.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } text && !PlatformCommands.TryParseDuration(text, out _))
            {
                result.AddError($"--push-timeout: '{text}' is not a duration between 1 ms and 1 day; write a number above 0 with ms, s, m or h, such as 30s or 5m.");
            }
        });
        var baseImage = new Option<string>("--base")
        {
            Description = "The base image, with the .NET runtime the release needs: an OCI image layout folder or archive (scripts/oci-base.sh builds one).",
            HelpName = "layout",
            Required = true,
        };
        var tag = new Option<string?>("--tag") { Description = "The name loading tools give the image (default skiff-release:<12 hex digits of the release>); not part of its digest.", HelpName = "name" };
        var json = new Option<bool>("--json") { Description = "Print what was done as JSON: image and config digests, archive, layers, and what a push uploaded." };
        var store = CommonOptions.Folder("--store", "The local blob store: blobs found there are not fetched from the server, fetched ones are kept there.", "store");
        var client = new ClientOptions();
        var command = new Command("export", "Write a release as an OCI image (an archive, a registry push, or both): the base image, the environment in a few stable layers, the source; its entrypoint runs the release as the agent does.")
        {
            release, oci, push, baseImage, tag, user, authFile, insecure, pushTimeout, json, store,
        };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            var archive = parse.GetValue(oci);
            var pushTo = parse.GetValue(push);
            if (archive is null && pushTo is null)
            {
                throw new ClientException("say where the image goes: --oci FILE writes an archive, --push REGISTRY/NAME[:TAG] pushes to a registry (or both).", usage: true);
            }

            // Where the archive goes is checked before anything is built: a typo fails at once, not after the layers.
            var archivePath = archive is null ? null : ArchivePath(archive);
            var archiveName = parse.GetValue(tag) is { } named ? ImageReference.CheckArchiveName(named) : null;
            if (pushTo is not null)
            {
                // The reference's grammar before the server is asked for the release: the tag defaults to the release's digits.
                ImageReference.Parse(pushTo, "latest");
            }

            var basePath = parse.GetValue(baseImage)!;
            if (!File.Exists(basePath) && !Directory.Exists(basePath))
            {
                throw new ClientException($"--base {basePath} does not exist; build one with scripts/oci-base.sh build, or save one with `podman save --format oci-archive -o base.tar IMAGE`.", usage: true);
            }
            var server = new LazyServer(() => ClientConfig.Resolve(parse.GetValue(client.Server), parse.GetValue(client.Token), parse.GetValue(client.Data)));
            RegistryClient? registry = null;
            try
            {
                var digest = await ResolveAsync(server, parse.GetValue(release)!, cancellationToken).ConfigureAwait(false);
                ImageReference? target = null;
                if (pushTo is not null)
                {
                    // Reference, login and registry checked before the image is built: a typo fails in a second, not after minutes.
                    target = ImageReference.Parse(pushTo, digest.Short);
                    var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
                        .ToDictionary(e => (string)e.Key, e => (string?)e.Value, StringComparer.Ordinal);
                    var credentials = RegistryCredentials.Resolve(target, parse.GetValue(user), parse.GetValue(authFile), environment);
                    var stallTimeout = parse.GetValue(pushTimeout) is { } text && PlatformCommands.TryParseDuration(text, out var given) ? given : RegistryClient.DefaultStallTimeout;
                    registry = new RegistryClient(target, credentials, parse.GetValue(insecure), stallTimeout, TimeProvider.System);
                    await registry.ConnectAsync(cancellationToken).ConfigureAwait(false);
                }

                var blobs = new FetchingBlobStore(new FileBlobStore(parse.GetValue(store)!), server);
                OciImage image;
                try
                {
                    image = await ReleaseExporter.BuildAsync(blobs, digest, basePath, cancellationToken).ConfigureAwait(false);
                }
                catch (BlobNotFoundException missing) when (missing.Digest == digest)
                {
                    throw new ClientException(
                        $"release {digest} is neither in the local store ({parse.GetValue(store)}) nor on the server ({missing.StoreLocation}); export a release deployed there (`skiff history LOCATION` lists them) or one built here with `skiff build`.",
                        usage: true);
                }

                using var built = image;
                (string Path, long Bytes)? written = archive is null
                    ? null
                    : await ReleaseExporter.WriteArchiveAsync(image, archivePath!, archiveName ?? $"skiff-release:{digest.Short}", cancellationToken).ConfigureAwait(false);
                var pushed = registry is null
                    ? null
                    : await ImagePusher.PushAsync(registry, target!, image, cancellationToken).ConfigureAwait(false);
                Print(image, written, pushed, parse.GetValue(json));
                return 0;
            }
            finally
            {
                registry?.Dispose();
                server.Dispose();
            }
        }));
        return command;
    }

    /// <summary>
    /// The full path <c>--oci</c> names, once it is known that a file can be written there: not a folder, in a folder that
    /// exists (none is created: a mistyped folder would otherwise take the image), and one this user may write to.
    /// </summary>
    private static string ArchivePath(string given)
    {
        if (string.IsNullOrWhiteSpace(given))
        {
            throw new ClientException("--oci needs the file to write the image to, such as --oci image.tar.", usage: true);
        }

        var full = Path.GetFullPath(given);
        var folder = Path.GetDirectoryName(full)!;
        if (Directory.Exists(full))
        {
            throw new ClientException($"--oci {given} is a folder; name a file in it, such as --oci {Path.Combine(given, "image.tar")}.", usage: true);
        }

        if (!Directory.Exists(folder))
        {
            throw new ClientException(File.Exists(folder) || Path.Exists(folder)
                ? $"--oci {given}: {folder} is a file, not a folder; name a file in a folder."
                : $"--oci {given}: the folder {folder} does not exist; create it first (mkdir -p {folder}) or name a file in a folder that does.", usage: true);
        }

        // Written and removed at once: a folder this user may not write to, or a file system that takes no files (/proc).
        var probe = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.probe");
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new ClientException($"--oci {given}: cannot write a file in {folder} ({exception.Message}); name a file in a folder you may write to.", usage: true);
        }

        return full;
    }

    /// <summary>The release's digest: given in full, found in the locations' histories by prefix, or a location's live one.</summary>
    private static async Task<Digest> ResolveAsync(LazyServer server, string text, CancellationToken cancellationToken)
    {
        if (Digest.TryParse(text, out var digest))
        {
            return digest;
        }

        if (text.EndsWith(Current, StringComparison.OrdinalIgnoreCase))
        {
            var location = text[..^Current.Length];
            if (location.Length == 0)
            {
                throw new ClientException($"'{text}' names no location; give LOCATION@current, such as analytics@current (`skiff locations` lists them).", usage: true);
            }

            var locations = await server.Api.ListLocationsAsync(cancellationToken).ConfigureAwait(false);
            return locations.FirstOrDefault(l => l.Location == location) switch
            {
                null => throw new ClientException($"there is no location '{location}' on {server.Api.Server}; `skiff locations` lists them.", usage: true),
                { Release: null } => throw new ClientException($"location '{location}' has no live release yet; deploy one, or name a release from `skiff history {location}`."),
                var live => Digest.Parse(live.Release),
            };
        }

        // Hex digits as a user copies them: `skiff history` prints lowercase, but an uppercase copy names the same release.
        var lowered = text.ToLowerInvariant();
        if (Digest.TryParse(lowered, out digest))
        {
            return digest;
        }

        var prefix = lowered.StartsWith("sha256:", StringComparison.Ordinal) ? lowered["sha256:".Length..] : lowered;
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

    private static void Print(OciImage image, (string Path, long Bytes)? archive, PushedImage? pushed, bool json)
    {
        if (image.Experimental is { } experimental)
        {
            Console.Error.WriteLine($"note: release {image.Release.Short} is experimental (skiff deploy --exp: {experimental}); its image says so in the label org.skiff.experimental.");
        }

        if (json)
        {
            var result = new JsonObject
            {
                ["release"] = image.Release.ToString(),
                ["image"] = image.Digest.ToString(),
                ["config"] = image.ConfigDigest.ToString(),
                ["experimental"] = image.Experimental,
                ["archive"] = archive?.Path,
                ["bytes"] = archive?.Bytes,
                ["layers"] = new JsonArray([.. image.Described.Select(l => new JsonObject
                {
                    ["kind"] = l.Kind,
                    ["digest"] = l.Digest.ToString(),
                    ["size"] = l.Size,
                    ["description"] = l.Description,
                })]),
            };
            if (pushed is not null)
            {
                result["pushed"] = new JsonObject
                {
                    ["reference"] = pushed.Reference.ToString(),
                    ["digest"] = pushed.Image.ToString(),
                    ["uploaded"] = new JsonArray([.. pushed.Uploaded.Select(d => JsonValue.Create(d.ToString()))]),
                    ["uploaded_bytes"] = pushed.UploadedBytes,
                    ["already_there"] = pushed.AlreadyThere,
                };
            }

            Console.WriteLine(result.ToJsonString());
            return;
        }

        Console.WriteLine($"image {image.Digest} of release {image.Release.Short}, {image.Described.Count} layers");
        foreach (var layer in image.Described)
        {
            var description = layer.Description.Length > 90 ? layer.Description[..87] + "..." : layer.Description;
            Console.WriteLine($"  {layer.Kind,-12} {layer.Digest.Short}  {Megabytes(layer.Size),10}  {description}");
        }

        if (archive is { } written)
        {
            Console.WriteLine($"wrote {written.Path} ({Megabytes(written.Bytes)}); load it with `podman load -i {written.Path}`, then `podman run --rm IMAGE run JOB [--param NAME=VALUE]...`");
        }

        if (pushed is not null)
        {
            Console.WriteLine(
                $"pushed {pushed.Reference}@{pushed.Image}: uploaded {pushed.Uploaded.Count} blobs ({Megabytes(pushed.UploadedBytes)}), {pushed.AlreadyThere} already there");
        }
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
