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
    string? SdkVersion)
{
    public const string CurrentSchema = "skiff.release/v1";

    public static ReleaseManifest Create(Digest environment, Digest source, string entryAssembly, string? sdkVersion) =>
        new(CurrentSchema, environment, source, entryAssembly, sdkVersion);

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
