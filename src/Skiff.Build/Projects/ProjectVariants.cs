using System.Xml;
using System.Xml.Linq;
using Skiff.Core;
using Skiff.Core.Manifests;

namespace Skiff.Build.Projects;

/// <summary>
/// The environment variants a project declares with <c>&lt;SkiffVariants&gt;base;ml;dev&lt;/SkiffVariants&gt;</c> (the
/// first is the default); each one is the project restored and built with <c>-p:SkiffVariant=NAME</c>, so
/// <c>Condition="'$(SkiffVariant)' == 'ml'"</c> on an item group decides what a variant adds.
/// </summary>
/// <remarks>
/// Read from the project file's XML (and the nearest <c>Directory.Build.props</c> above it), not through an
/// MSBuild evaluation: an evaluation is a process start, about a second, and the fast path must know the
/// variant before it decides whether to restore. So the list must be written out literally.
/// </remarks>
internal static class ProjectVariants
{
    public const string PropertyName = "SkiffVariants";

    /// <summary>The names the project declares, in order; empty when it declares none.</summary>
    public static IReadOnlyList<string> Declared(string projectPath)
    {
        var fromProject = ReadProperty(projectPath);
        if (fromProject is not null)
        {
            return Split(fromProject, projectPath);
        }

        for (var folder = Path.GetDirectoryName(projectPath); folder is not null; folder = Path.GetDirectoryName(folder))
        {
            var props = Path.Combine(folder, "Directory.Build.props");
            if (File.Exists(props))
            {
                // MSBuild imports only the nearest one; so does this.
                return ReadProperty(props) is { } fromProps ? Split(fromProps, props) : [];
            }
        }

        return [];
    }

    /// <summary>
    /// The variant to build: <paramref name="requested"/>, or the project's default when null. A project that
    /// declares no variants has one, <see cref="EnvironmentManifest.DefaultVariant"/>, built as before.
    /// </summary>
    /// <exception cref="UnknownVariantException">The project does not declare <paramref name="requested"/>.</exception>
    public static ProjectVariant Resolve(string projectPath, string? requested)
    {
        var declared = Declared(projectPath);
        if (declared.Count == 0)
        {
            return requested is null || requested == EnvironmentManifest.DefaultVariant
                ? ProjectVariant.Undeclared
                : throw new UnknownVariantException(
                    $"{projectPath} declares no variants, so there is no variant '{requested}'. Declare them in the project, e.g. <{PropertyName}>base;{requested}</{PropertyName}> (the first is the default), or build without --variant.");
        }

        var name = requested ?? declared[0];
        var match = declared.FirstOrDefault(d => string.Equals(d, name, StringComparison.Ordinal))
            ?? throw new UnknownVariantException(
                $"{projectPath} declares no variant '{name}'; it declares {string.Join(", ", declared)} (<{PropertyName}>). Pick one of those, or add '{name}' to <{PropertyName}>.");
        return ProjectVariant.For(match, isDefault: match == declared[0]);
    }

    /// <summary>Every variant the project declares; one undeclared default when it declares none.</summary>
    public static IReadOnlyList<ProjectVariant> All(string projectPath)
    {
        var declared = Declared(projectPath);
        return declared.Count == 0
            ? [ProjectVariant.Undeclared]
            : [.. declared.Select((name, i) => ProjectVariant.For(name, isDefault: i == 0))];
    }

    private static string? ReadProperty(string file)
    {
        XDocument document;
        try
        {
            document = XDocument.Load(file);
        }
        catch (XmlException)
        {
            // MSBuild reports a broken project file better, with its own line numbers, when it restores.
            return null;
        }

        return document.Descendants()
            .Where(e => e.Name.LocalName == PropertyName && e.Parent?.Name.LocalName == "PropertyGroup")
            .Select(e => e.Value)
            .LastOrDefault();
    }

    private static List<string> Split(string value, string file)
    {
        var names = value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        foreach (var name in names)
        {
            // A name becomes a file name (packages.NAME.lock.json), a folder and an MSBuild property value.
            if (name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')) || name.Contains("$(", StringComparison.Ordinal))
            {
                throw new UnknownVariantException(
                    $"{file} declares a variant '{name}' in <{PropertyName}>; a variant name is letters, digits, '-' and '_' only, written out (not an MSBuild property).");
            }
        }

        var duplicate = names.GroupBy(n => n, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        return duplicate is null
            ? names
            : throw new UnknownVariantException($"{file} declares the variant '{duplicate.Key}' twice in <{PropertyName}>; list each once.");
    }
}

/// <summary>
/// One variant of a project: its name (recorded in the environment manifest), its lock file, and the MSBuild
/// properties its restore and build get.
/// </summary>
internal sealed record ProjectVariant(string Name, bool Declared, bool IsDefault)
{
    /// <summary>A project without <c>SkiffVariants</c>: built exactly as it was before variants existed.</summary>
    public static ProjectVariant Undeclared { get; } = new(EnvironmentManifest.DefaultVariant, Declared: false, IsDefault: true);

    public static ProjectVariant For(string name, bool isDefault) => new(name, Declared: true, isDefault);

    /// <summary>
    /// <c>packages.lock.json</c> for the default variant, the lock file `dotnet restore` and an IDE keep;
    /// <c>packages.NAME.lock.json</c> beside it for each other one.
    /// </summary>
    public string LockFileName => IsDefault ? "packages.lock.json" : $"packages.{Name}.lock.json";

    /// <summary>What the variant adds to restore and build, which must agree.</summary>
    public IReadOnlyList<string> MsBuildArguments =>
        !Declared ? []
        : IsDefault ? [$"-p:SkiffVariant={Name}"]
        : [$"-p:SkiffVariant={Name}", $"-p:NuGetLockFilePath={LockFileName}"];

    /// <summary>The folder under <c>obj/skiff/RID/</c> that holds this variant's build output and compile record.</summary>
    public string FolderName => Declared ? Path.Combine("variants", Name) : "";
}

/// <summary>A variant was asked for that the project does not declare, or the declaration is malformed.</summary>
internal sealed class UnknownVariantException(string message) : SkiffException(message);
