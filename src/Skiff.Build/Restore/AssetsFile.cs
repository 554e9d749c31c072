using System.Text.Json;
using Skiff.Build.Environments;
using Skiff.Core.Archives;

namespace Skiff.Build.Restore;

/// <summary>
/// Reads NuGet's restore output, <c>obj/project.assets.json</c>: the full resolved closure with each
/// package's content hash and, per framework and runtime identifier, the assets the restore selected.
/// </summary>
internal static class AssetsFile
{
    public static string PathFor(string projectPath) =>
        Path.Combine(Path.GetDirectoryName(projectPath)!, "obj", "project.assets.json");

    /// <summary>
    /// The resolved closure for <paramref name="rid"/>, or null when the file does not describe this
    /// project for that runtime identifier (a restore is due).
    /// </summary>
    public static ResolvedClosure? TryRead(string projectPath, string rid)
    {
        var assetsPath = PathFor(projectPath);
        if (!File.Exists(assetsPath))
        {
            return null;
        }

        using var document = JsonDocument.Parse(File.ReadAllBytes(assetsPath));
        var root = document.RootElement;
        var project = root.GetProperty("project");
        var restore = project.GetProperty("restore");
        // An obj folder copied along with the project describes the project where it used to be.
        if (!string.Equals(restore.GetProperty("projectPath").GetString(), projectPath, StringComparison.Ordinal))
        {
            return null;
        }

        var frameworks = project.GetProperty("frameworks").EnumerateObject().ToList();
        if (frameworks.Count != 1)
        {
            throw new RestoreFailedException(
                $"{projectPath} targets {frameworks.Count} frameworks ({string.Join(", ", frameworks.Select(f => f.Name))}); Skiff deploys one. Set a single <TargetFramework> in the project.",
                output: null);
        }

        var framework = frameworks[0];
        var targetKey = root.GetProperty("targets").EnumerateObject()
            .Select(t => t.Name)
            .FirstOrDefault(name => name.EndsWith("/" + rid, StringComparison.Ordinal));
        if (targetKey is null)
        {
            return null;
        }

        var frameworkName = targetKey[..targetKey.IndexOf('/', StringComparison.Ordinal)];
        var target = root.GetProperty("targets").GetProperty(targetKey);
        var libraries = root.GetProperty("libraries");
        var packageFolders = root.GetProperty("packageFolders").EnumerateObject().Select(f => f.Name).ToList();
        var ridChain = RuntimeIdentifierChain(framework.Value, rid);

        var packages = new List<ResolvedPackage>();
        var projectReferences = new List<string>();
        foreach (var library in target.EnumerateObject())
        {
            var type = library.Value.GetProperty("type").GetString();
            var info = libraries.GetProperty(library.Name);
            if (type == "project")
            {
                var relative = info.GetProperty("path").GetString()!;
                projectReferences.Add(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(projectPath)!, relative)));
                continue;
            }

            if (type != "package")
            {
                continue;
            }

            var slash = library.Name.IndexOf('/', StringComparison.Ordinal);
            var id = library.Name[..slash];
            var version = library.Name[(slash + 1)..];
            var folder = FindPackageFolder(packageFolders, info.GetProperty("path").GetString()!, library.Name, projectPath);
            var runtime = RuntimeAssets(library.Value, ridChain).ToList();
            var assets = runtime
                .Select(asset => new ArchiveFile(asset.InBlob, Path.Combine(folder, asset.Path)))
                .ToList();
            packages.Add(new ResolvedPackage(id, version, info.GetProperty("sha512").GetString() ?? "", assets)
            {
                DepsAssets = [.. runtime.Select(asset => new DepsAsset(asset.InBlob, asset.Group, asset.Locale))],
                CompileAssets = library.Value.TryGetProperty("compile", out var compile)
                    ? [.. compile.EnumerateObject().Select(f => f.Name).Where(IsAsset).Select(path => Path.Combine(folder, path))]
                    : [],
            });
        }

        var frameworkReferences = framework.Value.TryGetProperty("frameworkReferences", out var references)
            ? references.EnumerateObject().Select(r => r.Name).ToList()
            : [];

        var shipped = Shipped(framework.Value, target);
        return new ResolvedClosure(
            projectPath,
            frameworkName,
            rid,
            frameworkReferences,
            [.. packages.Where(p => shipped.Contains(p.Id))],
            projectReferences)
        {
            DevelopmentOnly = [.. packages.Where(p => !shipped.Contains(p.Id))],
        };
    }

    /// <summary>
    /// The ids of the packages a deployed app can load: every package reachable from a direct reference without
    /// <c>PrivateAssets="all"</c> or from a project reference. The rest are for the build only (analyzers,
    /// build-time packages, test tools; NuGet writes <c>PrivateAssets="all"</c> when it adds a package that marks
    /// itself a developmentDependency), and `dotnet publish` leaves them out of its output and deps file
    /// (checked with xunit.assert, whose assembly `dotnet build` copies and `dotnet publish` does not).
    /// </summary>
    private static HashSet<string> Shipped(JsonElement framework, JsonElement target)
    {
        var dependencies = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        var roots = new List<string>();
        foreach (var library in target.EnumerateObject())
        {
            var id = library.Name[..library.Name.IndexOf('/', StringComparison.Ordinal)];
            dependencies[id] = library.Value.TryGetProperty("dependencies", out var deps) ? [.. deps.EnumerateObject().Select(d => d.Name)] : [];
            if (library.Value.GetProperty("type").GetString() == "project")
            {
                roots.Add(id);
            }
        }

        if (framework.TryGetProperty("dependencies", out var direct))
        {
            roots.AddRange(direct.EnumerateObject()
                .Where(d => !(d.Value.TryGetProperty("suppressParent", out var suppress)
                    && string.Equals(suppress.GetString(), "All", StringComparison.OrdinalIgnoreCase)))
                .Select(d => d.Name));
        }

        var shipped = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var pending = new Stack<string>(roots);
        while (pending.TryPop(out var id))
        {
            if (shipped.Add(id) && dependencies.TryGetValue(id, out var next))
            {
                foreach (var dependency in next)
                {
                    pending.Push(dependency);
                }
            }
        }

        return shipped;
    }

    /// <summary>
    /// The package-relative paths of the assets a process needs at run time (managed, native and
    /// satellite assemblies, and RID-specific assets that apply to this runtime identifier), each with its
    /// path in the package blob: satellites move to their culture's own folder (<see cref="SatelliteLayout"/>).
    /// </summary>
    private static IEnumerable<(string Path, string InBlob, string Group, string? Locale)> RuntimeAssets(JsonElement library, IReadOnlyList<string> ridChain)
    {
        var assets = new SortedDictionary<string, (string InBlob, string Group, string? Locale)>(StringComparer.Ordinal);
        foreach (var group in (string[])["runtime", "native"])
        {
            if (library.TryGetProperty(group, out var files))
            {
                foreach (var file in files.EnumerateObject())
                {
                    assets[file.Name] = (file.Name, group, null);
                }
            }
        }

        // Every culture the package has, whatever the project's SatelliteResourceLanguages: the blob is shared.
        if (library.TryGetProperty("resource", out var resources))
        {
            foreach (var file in resources.EnumerateObject())
            {
                assets[file.Name] = file.Value.TryGetProperty("locale", out var locale) && locale.GetString() is { Length: > 0 } culture
                    ? (SatelliteLayout.PathInBlob(file.Name, culture), "resources", culture)
                    : (file.Name, "resources", null);
            }
        }

        // A RID-specific target has already resolved runtimes/<rid>/… into runtime and native; runtimeTargets
        // only appear for portable targets. Take the most specific RID that has any, as the host would.
        if (library.TryGetProperty("runtimeTargets", out var runtimeTargets))
        {
            var byRid = runtimeTargets.EnumerateObject()
                .GroupBy(f => f.Value.TryGetProperty("rid", out var r) ? r.GetString() : null)
                .Where(g => g.Key is not null)
                .ToDictionary(
                    g => g.Key!,
                    g => g.Select(f => (f.Name, Group: f.Value.TryGetProperty("assetType", out var type) && type.GetString() == "native" ? "native" : "runtime")).ToList(),
                    StringComparer.Ordinal);
            var best = ridChain.FirstOrDefault(byRid.ContainsKey);
            if (best is not null)
            {
                foreach (var (file, group) in byRid[best])
                {
                    assets[file] = (file, group, null);
                }
            }
        }

        return assets
            .Where(asset => IsAsset(asset.Key))
            .Select(asset => (asset.Key, asset.Value.InBlob, asset.Value.Group, asset.Value.Locale));
    }

    // "_._" marks an empty folder: the package deliberately has no asset for this framework.
    private static bool IsAsset(string path) => !path.EndsWith("/_._", StringComparison.Ordinal) && path != "_._";

    private static string FindPackageFolder(IReadOnlyList<string> packageFolders, string libraryPath, string library, string projectPath)
    {
        foreach (var folder in packageFolders)
        {
            var candidate = Path.Combine(folder, libraryPath);
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new RestoreFailedException(
            $"package {library} of {projectPath} is not in any NuGet packages folder ({string.Join(", ", packageFolders)}); run `dotnet restore` or build again with --restore.",
            output: null);
    }

    /// <summary>The runtime identifier and the ones it falls back to, from the graph the SDK used for the restore.</summary>
    private static List<string> RuntimeIdentifierChain(JsonElement framework, string rid)
    {
        var chain = new List<string> { rid };
        if (!framework.TryGetProperty("runtimeIdentifierGraphPath", out var graphPathElement)
            || graphPathElement.GetString() is not { } graphPath
            || !File.Exists(graphPath))
        {
            chain.Add("any");
            return chain;
        }

        using var graph = JsonDocument.Parse(File.ReadAllBytes(graphPath));
        var runtimes = graph.RootElement.GetProperty("runtimes");
        // Breadth-first over "#import", which is how the host orders fallbacks.
        for (var i = 0; i < chain.Count; i++)
        {
            if (runtimes.TryGetProperty(chain[i], out var entry) && entry.TryGetProperty("#import", out var imports))
            {
                foreach (var import in imports.EnumerateArray())
                {
                    var name = import.GetString()!;
                    if (!chain.Contains(name))
                    {
                        chain.Add(name);
                    }
                }
            }
        }

        return chain;
    }
}
