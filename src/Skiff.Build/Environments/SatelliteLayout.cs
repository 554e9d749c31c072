namespace Skiff.Build.Environments;

/// <summary>
/// Where a package's satellite assemblies sit inside its blob: each culture in a folder of its own, away
/// from the package's assemblies, so that a release sees exactly the cultures its deps file names.
/// </summary>
/// <remarks>
/// <para>A package blob is shared by every project that uses the package, so it carries every culture the
/// package has; a project's <c>SatelliteResourceLanguages</c> only decides which its deps file lists. That
/// alone is not enough at their usual place: when a satellite is not found through the deps file, the runtime
/// (<c>AssemblyLoadContext.ResolveSatelliteAssembly</c>) looks in <c>CULTURE/</c> beside the package's
/// assembly, and an app built for <c>en</c> printed German under <c>LANG=de_DE</c>.</para>
/// <para>The host makes the folder above each listed satellite's culture folder a resource root, and the
/// runtime looks for <c>ROOT/CULTURE/NAME.resources.dll</c> in every root. With one folder per culture,
/// <c>_resources/de/lib/net8.0/de/X.resources.dll</c>, the root that listing German adds holds German only,
/// and nothing is left beside the assembly: the cultures found are those of the deps file, as in a bin
/// folder that <c>dotnet build</c> filled.</para>
/// </remarks>
internal static class SatelliteLayout
{
    private const string Folder = "_resources";

    /// <summary>The path in the package blob of the satellite at <paramref name="assetPath"/> (package-relative) for <paramref name="locale"/>.</summary>
    public static string PathInBlob(string assetPath, string locale) => $"{Folder}/{locale}/{assetPath}";
}
