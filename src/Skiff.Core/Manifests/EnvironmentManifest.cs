namespace Skiff.Core.Manifests;

/// <summary>
/// Everything a release needs besides its own code: the resolved package closure for one target
/// framework and runtime identifier. Its digest is the environment digest; two projects that resolve
/// the same closure share one environment.
/// </summary>
internal sealed record EnvironmentManifest(
    string Schema,
    string Framework,
    string Rid,
    IReadOnlyList<string> FrameworkReferences,
    string Variant,
    bool Locked,
    IReadOnlyList<PackageEntry> Packages)
{
    // v2 added Locked: whether the closure was restored from the project's packages.lock.json.
    public const string CurrentSchema = "skiff.environment/v2";
    public const string DefaultVariant = "default";

    /// <summary>Creates a manifest in canonical order, so equal closures give equal bytes.</summary>
    public static EnvironmentManifest Create(
        string framework,
        string rid,
        IEnumerable<string> frameworkReferences,
        string variant,
        IEnumerable<PackageEntry> packages,
        bool locked = false) =>
        new(
            CurrentSchema,
            framework,
            rid,
            [.. frameworkReferences.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)],
            variant,
            locked,
            [.. packages.OrderBy(p => p.Id, StringComparer.OrdinalIgnoreCase).ThenBy(p => p.Id, StringComparer.Ordinal).ThenBy(p => p.Version, StringComparer.Ordinal)]);

    public byte[] ToBytes() => CanonicalJson.Serialize(this);

    public static EnvironmentManifest FromBytes(ReadOnlySpan<byte> bytes, string what)
    {
        var manifest = CanonicalJson.Deserialize<EnvironmentManifest>(bytes, what);
        return manifest.Schema == CurrentSchema
            ? manifest
            : throw new InvalidManifestException(what, $"its schema is '{manifest.Schema}', expected '{CurrentSchema}'");
    }
}

/// <summary>One package of an environment: NuGet identity, NuGet's own content hash, and Skiff's blob of its runtime assets.</summary>
internal sealed record PackageEntry(string Id, string Version, string Sha512, Digest Blob);
