using System.Security.Cryptography;
using System.Security;
using System.Text;
using Skiff.Build.Processes;
using Skiff.Build.Restore;

namespace Skiff.Build.Experiments;

/// <summary>
/// Resolves experimental packages beside a project's environment without touching the project or its restore: a
/// project of Skiff's own under <c>obj/skiff/exp/KEY/</c> references every package of the environment at its version
/// (as a lower bound) and the experimental ones exactly, and NuGet restores it against the machine's configured
/// sources, the project's <c>NuGet.config</c> included (it is found from that folder up, as for the project). Its
/// lock file pins the result, and later builds of the same set restore locked, or not at all.
/// </summary>
internal static partial class ExperimentalRestore
{
    public const string ProjectFileName = "Experiment.csproj";

    /// <summary>The outcome: the packages the release carries besides its environment, and what the build needs to compile against them.</summary>
    public sealed record Outcome(IReadOnlyList<ResolvedPackage> Extra, ExperimentalBuild Build, bool Restored);

    /// <exception cref="ExperimentalPackageException">A package would need another version than the environment has, or none is new.</exception>
    /// <exception cref="RestoreFailedException">NuGet could not restore the packages.</exception>
    public static async Task<Outcome> RunAsync(ResolvedClosure environment, IReadOnlyList<ExperimentalPackage> requested, CancellationToken cancellationToken)
    {
        var asked = string.Join(" ", requested.Select(p => $"--exp {p}"));
        var inEnvironment = environment.Packages.Concat(environment.DevelopmentOnly).ToDictionary(p => p.Id, StringComparer.OrdinalIgnoreCase);
        foreach (var package in requested)
        {
            if (inEnvironment.TryGetValue(package.Id, out var present) && environment.Packages.Contains(present))
            {
                throw new ExperimentalPackageException(present.Version == package.Version
                    ? $"{asked}: the environment already has {present.Id} {present.Version}; there is nothing to try. Deploy without --exp {package}."
                    : $"{asked}: {present.Id} is {present.Version} in the environment, and --exp asks for {package.Version}; an experimental package cannot replace one of the environment's. Change the version in the project (a new environment), or pick {present.Version}.");
            }
        }

        var project = ProjectText(environment, requested);
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(project)))[..16];
        var folder = Path.Combine(Path.GetDirectoryName(environment.ProjectPath)!, "obj", "skiff", "exp", key);
        Directory.CreateDirectory(folder);
        var projectPath = Path.Combine(folder, ProjectFileName);
        WriteIfChanged(projectPath, project);

        var restored = false;
        var closure = AssetsFile.TryRead(projectPath, environment.Rid);
        var lockFile = Path.Combine(folder, PackagesLockFile.FileName);
        if (closure is null || !File.Exists(lockFile) || File.GetLastWriteTimeUtc(AssetsFile.PathFor(projectPath)) < File.GetLastWriteTimeUtc(projectPath))
        {
            var result = await DotnetCommand.RunAsync(
                [
                    "restore", projectPath,
                    $"-p:RuntimeIdentifier={environment.Rid}", .. MsBuildArguments.BesidesRid,
                    // The project's Directory.Build.props and central package versions are for the project: they could
                    // turn NuGet's warnings into errors or refuse a Version on a reference, and change nothing here.
                    "-p:ImportDirectoryBuildProps=false", "-p:ImportDirectoryBuildTargets=false", "-p:ImportDirectoryPackagesProps=false",
                    .. File.Exists(lockFile) ? ["-p:RestoreLockedMode=true"] : Array.Empty<string>(),
                ],
                folder,
                cancellationToken).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                if (Downgrades(projectPath) is { Count: > 0 } downgrades)
                {
                    throw Moved(asked, downgrades);
                }

                throw new RestoreFailedException(
                    $"restoring the experimental packages ({asked}) beside the environment of {environment.ProjectPath} failed; nothing was put into the store. Check the ids and versions NuGet names below.",
                    BuildOutput.Diagnostics(result.Output));
            }

            restored = true;
            closure = AssetsFile.TryRead(projectPath, environment.Rid)
                ?? throw new RestoreFailedException($"the restore of {projectPath} succeeded but wrote no {environment.Rid} target; delete {folder} and build again.", result.Output);
        }

        var moved = closure.Packages
            .Where(p => inEnvironment.TryGetValue(p.Id, out var present) && environment.Packages.Contains(present) && present.Version != p.Version)
            .Select(p => $"{p.Id}: the environment has {inEnvironment[p.Id].Version}, the experimental packages need {p.Version}")
            .ToList();
        if (moved.Count > 0)
        {
            throw Moved(asked, moved);
        }

        // An analyzer or build-time package has nothing a job loads: the release would be marked experimental and carry it
        // for nothing, and it would never run. Such a package belongs in the project, with PrivateAssets="all".
        var nothingToLoad = requested
            .Where(r => closure.Packages.FirstOrDefault(p => string.Equals(p.Id, r.Id, StringComparison.OrdinalIgnoreCase)) is { DepsAssets.Count: 0, CompileAssets.Count: 0 })
            .ToList();
        if (nothingToLoad.Count > 0)
        {
            throw new ExperimentalPackageException(
                $"{asked}: {string.Join(", ", nothingToLoad)} {(nothingToLoad.Count == 1 ? "has" : "have")} nothing a job loads (no library or runtime assemblies: an analyzer or build-time package), and --exp adds packages a job runs with. Nothing was put into the store. Reference it in the project with PrivateAssets=\"all\" instead.");
        }

        var extra = closure.Packages.Where(p => !(inEnvironment.TryGetValue(p.Id, out var present) && environment.Packages.Contains(present))).ToList();
        var targets = Path.Combine(folder, "Experiment.targets");
        WriteIfChanged(targets, TargetsText(extra));
        return new Outcome(extra, new ExperimentalBuild(key, targets), restored);
    }

    private static ExperimentalPackageException Moved(string asked, IReadOnlyList<string> moved) => new(
        $"{asked} would change packages of the environment, which a deploy with --exp never does; nothing was put into the store:"
        + string.Concat(moved.Select(m => $"{Environment.NewLine}  {m}"))
        + $"{Environment.NewLine}Pick a version of the experimental package that works with the environment's, or change the project's references (a new environment).");

    /// <summary>
    /// The environment's packages an experimental one needs in a higher version. The environment's versions are direct
    /// references of the restore project, so NuGet refuses the restore with NU1605 (a downgrade) and says so in the
    /// assets file's logs, which it writes on a failed restore too: "… downgrade: ID from NEEDED to PRESENT. …".
    /// </summary>
    private static List<string> Downgrades(string projectPath)
    {
        var assets = AssetsFile.PathFor(projectPath);
        if (!File.Exists(assets))
        {
            return [];
        }

        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(assets));
        if (!document.RootElement.TryGetProperty("logs", out var logs))
        {
            return [];
        }

        return [.. logs.EnumerateArray()
            .Where(log => log.TryGetProperty("code", out var code) && code.GetString() == "NU1605")
            .Select(log => (Id: log.TryGetProperty("libraryId", out var id) ? id.GetString() : null, Match: DowngradeText().Match(log.GetProperty("message").GetString() ?? "")))
            .Where(d => d.Id is not null && d.Match.Success)
            .Select(d => $"{d.Id}: the environment has {d.Match.Groups["present"].Value}, the experimental packages need {d.Match.Groups["needed"].Value}")
            .Distinct()];
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"downgrade: \S+ from (?<needed>\S+) to (?<present>[^\s.]+(\.[^\s.]+)*)\.? ", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex DowngradeText();

    /// <summary>
    /// Every package the environment ships at its own version as a lower bound, so NuGet resolves the experimental
    /// packages' dependencies to those versions or, where one needs more, to a higher one that the check then names.
    /// </summary>
    private static string ProjectText(ResolvedClosure environment, IReadOnlyList<ExperimentalPackage> requested)
    {
        var text = new StringBuilder();
        text.AppendLine("<Project Sdk=\"Microsoft.NET.Sdk\">");
        text.AppendLine("  <!-- Written by Skiff for an experimental deploy (skiff deploy with exp packages): the environment's packages and the experimental ones, restored apart from the project. -->");
        text.AppendLine("  <PropertyGroup>");
        text.AppendLine($"    <TargetFramework>{Xml(environment.Framework)}</TargetFramework>");
        text.AppendLine($"    <RuntimeIdentifiers>{Xml(environment.Rid)}</RuntimeIdentifiers>");
        text.AppendLine("    <RestorePackagesWithLockFile>true</RestorePackagesWithLockFile>");
        text.AppendLine("  </PropertyGroup>");
        text.AppendLine("  <ItemGroup>");
        foreach (var framework in environment.FrameworkReferences.Where(f => f != "Microsoft.NETCore.App").Order(StringComparer.Ordinal))
        {
            text.AppendLine($"    <FrameworkReference Include=\"{Xml(framework)}\" />");
        }

        foreach (var package in environment.Packages.OrderBy(p => p.Id, StringComparer.OrdinalIgnoreCase))
        {
            text.AppendLine($"    <PackageReference Include=\"{Xml(package.Id)}\" Version=\"{Xml(package.Version)}\" />");
        }

        foreach (var package in requested.OrderBy(p => p.Id, StringComparer.OrdinalIgnoreCase))
        {
            text.AppendLine($"    <PackageReference Include=\"{Xml(package.Id)}\" Version=\"[{Xml(package.Version)}]\" />");
        }

        text.AppendLine("  </ItemGroup>");
        text.AppendLine("</Project>");
        return text.ToString();
    }

    /// <summary>
    /// References to the extra packages' compile assemblies, not copied (<c>Private=false</c>): the source blob stays the
    /// project's own code, and the host finds the packages through the deps file, in their blobs' folders.
    /// </summary>
    private static string TargetsText(IReadOnlyList<ResolvedPackage> extra)
    {
        var text = new StringBuilder();
        text.AppendLine("<Project>");
        text.AppendLine("  <ItemGroup>");
        foreach (var assembly in extra.SelectMany(p => p.CompileAssets).Where(a => a.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal))
        {
            text.AppendLine($"    <Reference Include=\"{Xml(MsBuildEscaped(assembly))}\" Private=\"false\" />");
        }

        text.AppendLine("  </ItemGroup>");
        text.AppendLine("</Project>");
        return text.ToString();
    }

    private static string Xml(string value) => SecurityElement.Escape(value);

    /// <summary>
    /// A path as an item's Include takes it literally: MSBuild reads <c>;</c> as a list, <c>$ @ %</c> as properties, items
    /// and metadata, <c>* ?</c> as wildcards, and <c>'</c> in conditions; a packages folder may hold any of them.
    /// </summary>
    internal static string MsBuildEscaped(string path)
    {
        var escaped = new StringBuilder(path.Length);
        foreach (var c in path)
        {
            _ = c is '%' or '$' or '@' or ';' or '*' or '?' or '\''
                ? escaped.Append('%').Append(((int)c).ToString("X2", System.Globalization.CultureInfo.InvariantCulture))
                : escaped.Append(c);
        }

        return escaped.ToString();
    }

    /// <summary>Written only when different: MSBuild and the up-to-date check go by modification times.</summary>
    private static void WriteIfChanged(string path, string text)
    {
        if (!File.Exists(path) || File.ReadAllText(path) != text)
        {
            File.WriteAllText(path, text);
        }
    }
}
