using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Build.Environments;
using Skiff.Build.Restore;
using Skiff.Core.Manifests;

namespace Skiff.Build.Sources;

/// <summary>
/// Rewrites the <c>.deps.json</c> the SDK wrote so the host takes every package from its
/// content-addressed folder under <c>--additionalprobingpath</c>: <c>libraries[].path</c> becomes the
/// package blob's hex digest.
/// </summary>
internal static class DepsFile
{
    /// <param name="depsJson">The deps file the build wrote.</param>
    /// <param name="environment">The environment the release runs with.</param>
    /// <param name="depsFileName">Its name, for errors.</param>
    /// <param name="developmentOnly">
    /// <c>id/version</c> of the packages left out of the environment because the project uses them only to build:
    /// removed from the deps file, as `dotnet publish` removes them.
    /// </param>
    /// <param name="experimental">
    /// The release's experimental packages (<c>skiff deploy --exp</c>) with their assets: the build referenced them
    /// without copying, so the SDK did not list them; they are added as packages in their blobs' folders, and the host
    /// loads them exactly as it loads the environment's.
    /// </param>
    public static byte[] Rewrite(
        byte[] depsJson,
        EnvironmentManifest environment,
        string depsFileName,
        IReadOnlySet<string>? developmentOnly = null,
        IReadOnlyList<(PackageEntry Entry, IReadOnlyList<DepsAsset> Assets)>? experimental = null)
    {
        var packages = environment.Packages.ToDictionary(
            p => $"{p.Id}/{p.Version}",
            p => p,
            StringComparer.OrdinalIgnoreCase);
        var root = JsonNode.Parse(depsJson)?.AsObject()
            ?? throw new InvalidOperationException($"{depsFileName} is empty.");
        var libraries = root["libraries"]?.AsObject() ?? [];
        if (developmentOnly is { Count: > 0 })
        {
            RemoveLibraries(root, libraries, developmentOnly);
        }

        foreach (var (name, node) in libraries)
        {
            if (node is not JsonObject library || (string?)library["type"] != "package")
            {
                continue;
            }

            if (!packages.TryGetValue(name, out var package))
            {
                throw new CompilationFailedException(
                    $"the build's {depsFileName} lists package {name}, which the restore did not resolve for {environment.Rid}; restore and build disagree. Build again with --restore.",
                    diagnostics: "");
            }

            library["path"] = package.Blob.Hex;
            // The host crashes on a package library without a sha512 key; an empty one is accepted.
            library["sha512"] ??= "";
            // hashPath names a NuGet-cache marker file that a content-addressed folder does not have.
            library.Remove("hashPath");
        }

        MoveSatellites(root, libraries);
        foreach (var (entry, assets) in experimental ?? [])
        {
            AddPackage(root, libraries, entry, assets);
        }

        Canonicalize(root);
        return JsonSerializer.SerializeToUtf8Bytes(root, new JsonSerializerOptions { WriteIndented = true });
    }

    private static void AddPackage(JsonObject root, JsonObject libraries, PackageEntry entry, IReadOnlyList<DepsAsset> assets)
    {
        var name = $"{entry.Id}/{entry.Version}";
        libraries[name] = new JsonObject
        {
            ["type"] = "package",
            ["serviceable"] = true,
            ["sha512"] = entry.Sha512,
            ["path"] = entry.Blob.Hex,
        };
        foreach (var (_, target) in root["targets"]?.AsObject() ?? [])
        {
            if (target is not JsonObject entries)
            {
                continue;
            }

            var groups = new JsonObject();
            foreach (var asset in assets)
            {
                var group = groups[asset.Group] as JsonObject ?? (JsonObject)(groups[asset.Group] = new JsonObject());
                group[asset.PathInBlob] = asset.Locale is null ? new JsonObject() : new JsonObject { ["locale"] = asset.Locale };
            }

            entries[name] = groups;
        }
    }

    private static void RemoveLibraries(JsonObject root, JsonObject libraries, IReadOnlySet<string> names)
    {
        foreach (var name in libraries.Select(l => l.Key).Where(names.Contains).ToList())
        {
            libraries.Remove(name);
        }

        foreach (var (_, target) in root["targets"]?.AsObject() ?? [])
        {
            if (target is not JsonObject entries)
            {
                continue;
            }

            foreach (var name in entries.Select(e => e.Key).Where(names.Contains).ToList())
            {
                entries.Remove(name);
            }

            foreach (var (_, entry) in entries)
            {
                if (entry?["dependencies"] is JsonObject dependencies)
                {
                    foreach (var (id, version) in dependencies.ToList())
                    {
                        if (names.Contains($"{id}/{(string?)version}"))
                        {
                            dependencies.Remove(id);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Points each package satellite the build listed (only the cultures of the project's
    /// <c>SatelliteResourceLanguages</c>) to its culture's folder in the package blob.
    /// </summary>
    private static void MoveSatellites(JsonObject root, JsonObject libraries)
    {
        foreach (var (_, target) in root["targets"]?.AsObject() ?? [])
        {
            foreach (var (name, node) in target?.AsObject() ?? [])
            {
                if ((string?)libraries[name]?["type"] != "package" || node?["resources"] is not JsonObject resources)
                {
                    continue;
                }

                foreach (var (path, asset) in resources.ToList())
                {
                    if ((string?)asset?["locale"] is { Length: > 0 } locale)
                    {
                        resources.Remove(path);
                        resources[SatelliteLayout.PathInBlob(path, locale)] = asset;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Sorts every object's keys so the order of PackageReference items in the project file, which the SDK
    /// carries into the deps file, does not change the source digest. The host reads the file by key.
    /// </summary>
    private static void Canonicalize(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                var entries = obj.OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
                obj.Clear();
                foreach (var (key, value) in entries)
                {
                    Canonicalize(value);
                    obj[key] = value;
                }

                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    Canonicalize(item);
                }

                break;
        }
    }
}
