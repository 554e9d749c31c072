using System.Text.Json.Serialization;

namespace Skiff.Core.Manifests;

/// <summary>
/// A runnable release: an environment plus the project's own compiled code. Its digest is the release id,
/// so deploying the same inputs again names the same release.
/// </summary>
internal sealed record ReleaseManifest(
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
        return IsPlainFileName(manifest.EntryAssembly)
            ? manifest
            : throw new InvalidManifestException(
                what, $"its entry_assembly '{string.Concat(manifest.EntryAssembly.Take(100).Select(c => char.IsControl(c) ? '?' : c))}' is not a plain .dll file name (no folders, no '..', no control characters, at most 255 characters)");
    }

    /// <summary>A file name with no folder part that can name a .NET assembly: <c>Hello.dll</c>.</summary>
    public static bool IsPlainFileName(string name) =>
        name is { Length: > 4 and <= 255 }
        && name.EndsWith(".dll", StringComparison.Ordinal)
        && !name.StartsWith('.')
        && !name.Any(c => char.IsControl(c) || c is '/' or '\\' or ':')
        && name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0;
}
