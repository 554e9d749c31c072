using System.Text.Json.Nodes;
using Skiff.Core;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;
using Skiff.Core.Materialization;

namespace Skiff.Cli.Export;

/// <summary>
/// Turns a release into an OCI image (docs/export.md): the base image's layers, the environment's packages in the
/// layers <see cref="LayerPlan"/> groups them into, then the source; an entrypoint that starts the release as the agent
/// starts a code server. The same release and base give the same bytes, in any folder, on any machine.
/// </summary>
internal static class ReleaseExporter
{
    /// <summary>Where the release lives in the image; the deps file points into <see cref="PackagesPath"/> as into the agent's cache.</summary>
    public const string SourcePath = "/skiff/source";

    public const string PackagesPath = "/skiff/packages";

    /// <summary>The time every image written says it was created (as the entries of Skiff's archives).</summary>
    private static readonly string Created = ArchiveWriter.EntryTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Builds the image of <paramref name="release"/> in a private folder: its layers as files, its config and manifest as
    /// bytes. The archive (<see cref="WriteArchiveAsync"/>) and a registry push (<see cref="Registry.ImagePusher"/>) both
    /// write this one image, so both give the same image digest. Dispose the image to delete the folder.
    /// </summary>
    public static async Task<OciImage> BuildAsync(IBlobStore blobs, Digest release, string basePath, CancellationToken cancellationToken)
    {
        var folder = ExportScratch.Create();
        var scratch = folder.Path;
        try
        {
            var baseImage = await OciBaseImage.OpenAsync(basePath, scratch, cancellationToken).ConfigureAwait(false);
            // Unpacked as the agent unpacks a release, through the same verified reader, then laid into layers.
            var materializer = new Materializer(blobs, Path.Combine(scratch, "cache"));
            var materialized = await materializer.MaterializeWithDetailsAsync(release, cancellationToken).ConfigureAwait(false);
            var environment = await ManifestLoader.LoadEnvironmentAsync(blobs, materialized.Manifest.Environment, cancellationToken).ConfigureAwait(false);

            // A release's experimental packages (skiff deploy --exp) are laid out beside its environment's, as the agent lays them.
            var sized = environment.Packages.Concat(materialized.Manifest.Experimental ?? []).DistinctBy(p => p.Blob)
                .Select(p => (Package: p, Bytes: FolderBytes(Path.Combine(materializer.PackagesDirectory, p.Blob.Hex))))
                .ToList();
            var layers = new List<(Layer Layer, string What)>();
            var layerFolder = Directory.CreateDirectory(Path.Combine(scratch, "layers")).FullName;
            foreach (var group in LayerPlan.Group(sized))
            {
                var layer = await LayerWriter.WriteAsync(
                    Path.Combine(layerFolder, $"{layers.Count}.tar"),
                    group.Packages.Select(p => ($"{PackagesPath.TrimStart('/')}/{p.Blob.Hex}", Path.Combine(materializer.PackagesDirectory, p.Blob.Hex))),
                    cancellationToken).ConfigureAwait(false);
                layers.Add((layer, $"skiff environment {materialized.Manifest.Environment.Short}: {group.Description}"));
            }

            var source = await LayerWriter.WriteAsync(
                Path.Combine(layerFolder, "source.tar"),
                [(SourcePath.TrimStart('/'), materialized.Release.SourceDirectory)],
                cancellationToken).ConfigureAwait(false);
            layers.Add((source, $"skiff source {materialized.Manifest.Source.Short}"));

            var inImage = new MaterializedRelease(release, SourcePath, PackagesPath, materialized.Manifest.EntryAssembly);
            var experimental = materialized.Manifest.IsExperimental
                ? string.Join(' ', materialized.Manifest.Experimental!.Select(p => $"{p.Id}@{p.Version}").Order(StringComparer.Ordinal))
                : null;
            var config = OciImageWriter.Serialize(Config(baseImage, inImage, materialized.Manifest, experimental, layers));
            var manifest = OciImageWriter.Serialize(new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = OciImageWriter.ManifestMediaType,
                ["config"] = OciImageWriter.Descriptor(OciImageWriter.ConfigMediaType, Digest.Compute(config), config.Length),
                ["layers"] = new JsonArray([
                    .. baseImage.Layers.Select(l => l.DeepClone()),
                    .. layers.Select(l => OciImageWriter.Descriptor(OciImageWriter.LayerMediaType, l.Layer.Digest, l.Layer.Size)),
                ]),
            });
            ExportedLayer[] described =
            [
                .. baseImage.Layers.Select(l => new ExportedLayer("base", Digest.Parse((string)l["digest"]!), (long)l["size"]!, "base image")),
                .. layers.Select((l, i) => new ExportedLayer(i == layers.Count - 1 ? "source" : "environment", l.Layer.Digest, l.Layer.Size, l.What)),
            ];
            return new OciImage(folder, release, baseImage, [.. layers.Select(l => l.Layer)], described, config, manifest, experimental);
        }
        catch (IOException exception) when (exception is not (FileNotFoundException or DirectoryNotFoundException))
        {
            folder.Dispose();
            throw new ExportException($"could not build the image in {scratch} ({exception.Message}); it needs room for the base image (when given as an archive) and the release: free space there, or point TMPDIR at a folder with room.", exception);
        }
        catch
        {
            folder.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes <paramref name="image"/> as an OCI image archive to <paramref name="destination"/> (replaced atomically);
    /// returns its full path and size. <paramref name="reference"/> is the index's <c>org.opencontainers.image.ref.name</c>,
    /// the name a loading tool gives the image; it is not part of the image's digest.
    /// </summary>
    public static async Task<(string Path, long Bytes)> WriteArchiveAsync(OciImage image, string destination, string reference, CancellationToken cancellationToken)
    {
        var manifestDescriptor = OciImageWriter.Descriptor(OciImageWriter.ManifestMediaType, image.Digest, image.Manifest.Length);
        manifestDescriptor["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = reference };
        var index = OciImageWriter.Serialize(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = OciImageWriter.IndexMediaType,
            ["manifests"] = new JsonArray(manifestDescriptor),
        });

        var full = Path.GetFullPath(destination);
        var temporary = $"{full}.{Guid.NewGuid():N}.partial";
        try
        {
            var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                await OciImageWriter.WriteArchiveAsync(file, image.Base, image.Layers, image.Config, image.Manifest, index, cancellationToken).ConfigureAwait(false);
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite: true);
        }
        catch (IOException exception)
        {
            File.Delete(temporary);
            throw new ExportException($"could not write {full} ({exception.Message}); nothing was written there: free space, or name a file elsewhere.", exception);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }

        return (full, new FileInfo(full).Length);
    }

    /// <summary>The base's configuration with the release's entrypoint, environment, working folder, labels, layers and history.</summary>
    private static JsonObject Config(OciBaseImage baseImage, MaterializedRelease release, ReleaseManifest manifest, string? experimental, IReadOnlyList<(Layer Layer, string What)> layers)
    {
        var image = new JsonObject
        {
            ["created"] = Created,
            ["architecture"] = baseImage.Config["architecture"]?.DeepClone(),
            ["os"] = baseImage.Config["os"]?.DeepClone(),
        };
        if (baseImage.Config["variant"] is { } variant)
        {
            image["variant"] = variant.DeepClone();
        }

        var settings = baseImage.Config["config"]?.DeepClone().AsObject() ?? [];
        // The variables the agent gives a code server that belong to the release (AgentHost.Launch): the location's
        // (SKIFF_LOCATION, its env and secrets) are the platform's to give at `podman run -e`, never baked into an image.
        var variables = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["SKIFF_RELEASE"] = release.Release.ToString(),
            ["DOTNET_NOLOGO"] = "1",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        };
        foreach (var (key, value) in release.ExecEnvironment())
        {
            variables[key] = value;
        }

        var env = (settings["Env"]?.AsArray().Select(v => (string?)v ?? "") ?? [])
            .Where(v => !variables.ContainsKey(v.Split('=')[0]))
            .Concat(variables.OrderBy(v => v.Key, StringComparer.Ordinal).Select(v => $"{v.Key}={v.Value}"));
        settings["Env"] = new JsonArray([.. env.Select(v => JsonValue.Create(v))]);
        // The same command line the agent starts (MaterializedRelease.ExecArguments); the arguments are the program's:
        // `run JOB --param NAME=VALUE` runs a job, `list` (the default) says what it defines.
        settings["Entrypoint"] = new JsonArray(["dotnet", .. release.ExecArguments([]).Select(a => JsonValue.Create(a))]);
        settings["Cmd"] = new JsonArray("list");
        // The agent's working folder for a release's processes: its source folder (docs/build.md, "Running a release").
        settings["WorkingDir"] = SourcePath;
        var labels = settings["Labels"]?.AsObject() ?? [];
        labels["org.skiff.release"] = release.Release.ToString();
        labels["org.skiff.environment"] = manifest.Environment.ToString();
        labels["org.skiff.source"] = manifest.Source.ToString();
        if (experimental is not null)
        {
            // Marked as `skiff history` marks it (EXP), so a registry's reader sees it is not a release of the project as
            // committed. Only such an image gets the label: every other image keeps the digest it had.
            labels["org.skiff.experimental"] = experimental;
        }

        settings["Labels"] = labels;
        image["config"] = settings;

        image["rootfs"] = new JsonObject
        {
            ["type"] = "layers",
            ["diff_ids"] = new JsonArray([
                .. baseImage.Config["rootfs"]!["diff_ids"]!.AsArray().Select(d => d!.DeepClone()),
                .. layers.Select(l => JsonValue.Create(l.Layer.Digest.ToString())),
            ]),
        };
        if (baseImage.Config["history"] is JsonArray history)
        {
            image["history"] = new JsonArray([
                .. history.Select(h => h!.DeepClone()),
                .. layers.Select(l => new JsonObject { ["created"] = Created, ["created_by"] = l.What, ["comment"] = "skiff export" }),
            ]);
        }

        return image;
    }

    private static long FolderBytes(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
}

/// <summary>One layer of an exported image: <c>base</c>, <c>environment</c> or <c>source</c>.</summary>
internal sealed record ExportedLayer(string Kind, Digest Digest, long Size, string Description);
