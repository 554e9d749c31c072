using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace Skiff.Core.Manifests;

/// <summary>
/// A runnable release: an environment plus the project's own compiled code. Its digest is the release id,
/// so deploying the same inputs again names the same release.
/// </summary>
internal sealed partial record ReleaseManifest(
    string Schema,
    Digest Environment,
    Digest Source,
    string EntryAssembly,
    string? SdkVersion,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<PackageEntry>? Experimental = null)
{
    public const string CurrentSchema = "skiff.release/v1";

    /// <summary>A manifest in canonical form.</summary>
    /// <param name="environment">The environment digest.</param>
    /// <param name="source">The source blob's digest.</param>
    /// <param name="entryAssembly">The app's assembly, a file name in the source blob.</param>
    /// <param name="sdkVersion">The Skiff.Sdk version the release was built against, when known.</param>
    /// <param name="experimental">
    /// Packages deployed with this release only (<c>skiff deploy --exp</c>, docs/build.md "Experimental dependencies"),
    /// outside its environment, which stays the project's own. Left out of the manifest when there are none, so a
    /// release without them keeps the bytes, and the id, it always had.
    /// </param>
    public static ReleaseManifest Create(Digest environment, Digest source, string entryAssembly, string? sdkVersion, IEnumerable<PackageEntry>? experimental = null) =>
        new(
            CurrentSchema,
            environment,
            source,
            entryAssembly,
            sdkVersion,
            experimental?.OrderBy(p => p.Id, StringComparer.OrdinalIgnoreCase).ThenBy(p => p.Id, StringComparer.Ordinal).ThenBy(p => p.Version, StringComparer.Ordinal).ToList() is { Count: > 0 } sorted ? sorted : null);

    /// <summary>Whether the release carries experimental packages besides its environment.</summary>
    [JsonIgnore]
    public bool IsExperimental => Experimental is { Count: > 0 };

    /// <summary>
    /// The package blobs a process of this release loads besides its environment's: every place that fetches, keeps or
    /// checks an environment's packages takes these too.
    /// </summary>
    public IEnumerable<Digest> ExperimentalBlobs() => Experimental?.Select(p => p.Blob) ?? [];

    public byte[] ToBytes() => CanonicalJson.Serialize(this);

    public static ReleaseManifest FromBytes(ReadOnlySpan<byte> bytes, string what)
    {
        var manifest = CanonicalJson.Deserialize<ReleaseManifest>(bytes, what);
        if (manifest.Schema != CurrentSchema)
        {
            throw new InvalidManifestException(what, $"its schema is '{manifest.Schema}', expected '{CurrentSchema}'");
        }

        // The agent runs `dotnet exec <source folder>/<entry>`: an entry of "../../tmp/evil.dll" ran a file from
        // outside the release (found by the attack pass). Whether the file is in the source blob is checked where
        // the blob is at hand (on deploy, and on the agent before it starts a process).
        if (!IsPlainFileName(manifest.EntryAssembly))
        {
            throw new InvalidManifestException(
                what, $"its entry_assembly '{Printable(manifest.EntryAssembly)}' is not a plain .dll file name (no folders, no '..', no control characters, at most 255 characters)");
        }

        return ExperimentalProblem(manifest.Experimental) is { } problem ? throw new InvalidManifestException(what, problem) : manifest;
    }

    /// <summary>A file name with no folder part that can name a .NET assembly: <c>Hello.dll</c>.</summary>
    public static bool IsPlainFileName(string name) =>
        name is { Length: > 4 and <= 255 }
        && name.EndsWith(".dll", StringComparison.Ordinal)
        && !name.StartsWith('.')
        && !name.Any(c => char.IsControl(c) || c is '/' or '\\' or ':')
        && name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0;

    /// <summary>
    /// What is wrong with a manifest's experimental packages as `skiff deploy --exp` would never write them; null when
    /// nothing is. A hand-made manifest was taken with any entries: a package id with a space or an '@' broke the
    /// release's history line ("Id@Version Id@Version"), and one package twice made its version a matter of load order.
    /// </summary>
    private static string? ExperimentalProblem(IReadOnlyList<PackageEntry>? experimental)
    {
        if (experimental is null)
        {
            return null;
        }

        if (experimental.Count == 0)
        {
            return "its experimental list is empty; leave the field out of a release without experimental packages";
        }

        foreach (var package in experimental)
        {
            if (package.Id is null || !PackageId().IsMatch(package.Id))
            {
                return $"its experimental package id '{Printable(package.Id)}' is not a NuGet package id (letters, digits, '.', '_', '-'; at most 100 characters)";
            }

            if (package.Version is null || !PackageVersion().IsMatch(package.Version))
            {
                return $"the version '{Printable(package.Version)}' of its experimental package {package.Id} is not an exact NuGet version (for example 1.2.3 or 1.2.3-beta.1)";
            }

            if (string.IsNullOrWhiteSpace(package.Sha512))
            {
                return $"its experimental package {package.Id} {package.Version} has no sha512 (NuGet's content hash of the package)";
            }
        }

        var twice = experimental.GroupBy(p => p.Id, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        return twice is null ? null : $"it names the experimental package {twice.Key} {twice.Count()} times; a release carries each package once";
    }

    private static string Printable(string? text) =>
        text is null ? "null" : string.Concat(text.Take(100).Select(c => char.IsControl(c) ? '?' : c));

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$", RegexOptions.CultureInvariant)]
    private static partial Regex PackageId();

    [GeneratedRegex(@"^[0-9][0-9A-Za-z.\-+]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex PackageVersion();
}
