using System.Text.Json;
using Skiff.Build.Projects;

namespace Skiff.Build.Restore;

/// <summary>
/// A project's <c>packages.lock.json</c>, as NuGet writes it: per target framework (and per
/// <c>framework/rid</c> for the project's <c>RuntimeIdentifiers</c>), every package of the closure with its
/// resolved version and content hash. Skiff restores a project that has one so that it gets exactly these
/// packages, whatever the registry serves that day.
/// </summary>
internal sealed class PackagesLockFile
{
    public const string FileName = "packages.lock.json";

    private readonly Dictionary<string, Dictionary<string, LockedPackage>> _sections;

    private PackagesLockFile(string path, Dictionary<string, Dictionary<string, LockedPackage>> sections)
    {
        Path = path;
        _sections = sections;
    }

    public string Path { get; }

    public sealed record LockedPackage(string Id, string Version, string ContentHash);

    /// <summary>The lock file of <paramref name="variant"/> (the project's own when null): each variant locks its own closure.</summary>
    public static string PathFor(string projectPath, ProjectVariant? variant = null) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(projectPath)!, variant?.LockFileName ?? FileName);

    /// <summary>The lock file next to the project for <paramref name="variant"/>, or null when it has none.</summary>
    public static PackagesLockFile? TryRead(string projectPath, ProjectVariant? variant = null)
    {
        var path = PathFor(projectPath, variant);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var sections = new Dictionary<string, Dictionary<string, LockedPackage>>(StringComparer.OrdinalIgnoreCase);
            foreach (var section in document.RootElement.GetProperty("dependencies").EnumerateObject())
            {
                var packages = new Dictionary<string, LockedPackage>(StringComparer.OrdinalIgnoreCase);
                foreach (var entry in section.Value.EnumerateObject())
                {
                    // Project references are locked by their own lock files; only packages are resolved here.
                    if (string.Equals(entry.Value.GetProperty("type").GetString(), "Project", StringComparison.OrdinalIgnoreCase))
                    {
                        continue;
                    }

                    packages[entry.Name] = new LockedPackage(
                        entry.Name,
                        entry.Value.TryGetProperty("resolved", out var resolved) ? resolved.GetString() ?? "" : "",
                        entry.Value.TryGetProperty("contentHash", out var hash) ? hash.GetString() ?? "" : "");
                }

                sections[section.Name] = packages;
            }

            return new PackagesLockFile(path, sections);
        }
        catch (Exception exception) when (exception is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new LockFileException(
                $"{path} is not a lock file NuGet can read ({exception.Message}). Restore it from version control, or delete it and run `dotnet restore` to write a new one.");
        }
    }

    /// <summary>Whether NuGet locked the closure for this runtime identifier too (the project lists it in <c>RuntimeIdentifiers</c>).</summary>
    public bool Covers(string rid) =>
        _sections.Keys.Any(key => key.EndsWith("/" + rid, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The locked version of every package for <paramref name="framework"/> (and <paramref name="rid"/>, when
    /// the lock file covers it), development-only packages included: NuGet cannot tell them apart here.
    /// </summary>
    public IReadOnlyDictionary<string, string> Versions(string framework, string rid)
    {
        var versions = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var key in (string[])[framework, $"{framework}/{rid}"])
        {
            if (_sections.TryGetValue(key, out var section))
            {
                foreach (var (id, package) in section)
                {
                    versions[id] = package.Version;
                }
            }
        }

        return versions;
    }

    /// <summary>
    /// How the restored closure differs from the lock file, one line per package that would move; empty when
    /// the restore gave exactly what is locked.
    /// </summary>
    public IReadOnlyList<string> Differences(ResolvedClosure closure)
    {
        if (!_sections.TryGetValue(closure.Framework, out var frameworkSection))
        {
            return [$"the lock file has no section for {closure.Framework} (it has {string.Join(", ", _sections.Keys)})"];
        }

        var locked = new Dictionary<string, LockedPackage>(frameworkSection, StringComparer.OrdinalIgnoreCase);
        if (_sections.TryGetValue($"{closure.Framework}/{closure.Rid}", out var ridSection))
        {
            foreach (var (id, package) in ridSection)
            {
                locked[id] = package;
            }
        }

        var differences = new List<string>();
        // The lock file also pins what the project uses only to build.
        var all = closure.Packages.Concat(closure.DevelopmentOnly).ToList();
        var resolved = all.ToDictionary(p => p.Id, StringComparer.OrdinalIgnoreCase);
        foreach (var package in all.OrderBy(p => p.Id, StringComparer.OrdinalIgnoreCase))
        {
            if (!locked.TryGetValue(package.Id, out var lockedPackage))
            {
                differences.Add($"{package.Id} {package.Version} would be added (not in the lock file)");
            }
            else if (!string.Equals(lockedPackage.Version, package.Version, StringComparison.OrdinalIgnoreCase))
            {
                differences.Add($"{package.Id} would move from {lockedPackage.Version} to {package.Version}");
            }
            else if (lockedPackage.ContentHash.Length > 0 && !string.Equals(lockedPackage.ContentHash, package.Sha512, StringComparison.Ordinal))
            {
                differences.Add($"{package.Id} {package.Version} has another content hash than the lock file records (the package changed at its source)");
            }
        }

        foreach (var package in locked.Values.Where(p => !resolved.ContainsKey(p.Id)).OrderBy(p => p.Id, StringComparer.OrdinalIgnoreCase))
        {
            differences.Add($"{package.Id} {package.Version} would be removed");
        }

        return differences;
    }
}
