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
        return manifest.Schema == CurrentSchema
            ? manifest
            : throw new InvalidManifestException(what, $"its schema is '{manifest.Schema}', expected '{CurrentSchema}'");
    }
}
