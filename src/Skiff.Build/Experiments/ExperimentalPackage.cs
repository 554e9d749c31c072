using System.Text.RegularExpressions;
using Skiff.Core;

namespace Skiff.Build.Experiments;

/// <summary>
/// A package asked for with <c>skiff deploy --exp Id@Version</c>: deployed with one release, outside the project file
/// and its environment (docs/build.md, "Experimental dependencies").
/// </summary>
internal sealed partial record ExperimentalPackage(string Id, string Version)
{
    public override string ToString() => $"{Id}@{Version}";

    /// <summary>Every <c>--exp</c> value, checked before anything runs.</summary>
    /// <exception cref="ExperimentalPackageException">A value is not <c>Id@Version</c> with an exact version, or names a package twice.</exception>
    public static IReadOnlyList<ExperimentalPackage> ParseAll(IEnumerable<string> values)
    {
        var packages = values.Select(Parse).ToList();
        var twice = packages.GroupBy(p => p.Id, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        return twice is null
            ? packages
            : throw new ExperimentalPackageException($"--exp names {twice.Key} {twice.Count()} times ({string.Join(", ", twice)}); give each package once, with the one version to try.");
    }

    public static ExperimentalPackage Parse(string value)
    {
        var match = Syntax().Match(value.Trim());
        return match.Success
            ? new ExperimentalPackage(match.Groups["id"].Value, match.Groups["version"].Value)
            : throw new ExperimentalPackageException(
                $"--exp '{value}' is not a package and an exact version; write it as Id@Version, for example --exp Cronos@0.13.0 (no version ranges or floating versions: a release names exactly what it runs).");
    }

    // A NuGet id (letters, digits, '.', '-', '_'), '@', and an exact SemVer 2 version NuGet would resolve as written.
    [GeneratedRegex(@"^(?<id>[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99})@(?<version>\d+\.\d+\.\d+(\.\d+)?(-[0-9A-Za-z][0-9A-Za-z.\-]*)?)$", RegexOptions.CultureInvariant)]
    private static partial Regex Syntax();
}

/// <summary>An experimental package cannot be deployed as asked: bad syntax, a version the environment already holds otherwise, or nothing new.</summary>
internal sealed class ExperimentalPackageException(string message) : SkiffException(message);
