using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>
/// A registered release: the environment and source a release manifest names. <see cref="Id"/> is the
/// digest of that manifest, so one id always means the same environment, source and entry assembly.
/// </summary>
/// <param name="Id">The release id: the digest of the release manifest.</param>
/// <param name="Environment">The environment digest (the manifest of the dependency closure).</param>
/// <param name="Source">The digest of the source blob.</param>
/// <param name="EntryAssembly">The file name of the assembly to start, inside the source blob.</param>
/// <param name="SdkVersion">The Skiff.Sdk version the source was built against, when the build side knew it.</param>
/// <param name="RegisteredAt">When the release was first registered; registering it again keeps this.</param>
internal sealed record ReleaseRecord(
    Digest Id,
    Digest Environment,
    Digest Source,
    string EntryAssembly,
    string? SdkVersion,
    DateTimeOffset RegisteredAt);
