using Skiff.Core;

namespace Skiff.Server.Metadata;

/// <summary>A write contradicts what is already recorded; nothing was changed.</summary>
internal sealed class MetadataConflictException : SkiffException
{
    private MetadataConflictException(string message)
        : base(message)
    {
    }

    /// <summary>A deployment's outcome was already decided; it is decided once.</summary>
    public static MetadataConflictException DeploymentNotPending(string id, string outcome) =>
        new($"deployment '{id}' is already {outcome}, so it cannot be completed again; its outcome stands. Deploy again to change what is live.");

    /// <summary>A caller-chosen id was used twice.</summary>
    public static MetadataConflictException DuplicateId(string kind, string id) =>
        new($"a {kind} with id '{id}' is already recorded; nothing was changed. Record it under a new id.");

    /// <summary>A release id was registered again with different contents.</summary>
    public static MetadataConflictException ReleaseMismatch(ReleaseRecord recorded, ReleaseRecord offered) =>
        new($"release {recorded.Id} is already registered as environment {recorded.Environment}, source {recorded.Source}, entry '{recorded.EntryAssembly}', SDK {recorded.SdkVersion ?? "unknown"}, but was offered again as environment {offered.Environment}, source {offered.Source}, entry '{offered.EntryAssembly}', SDK {offered.SdkVersion ?? "unknown"}. A release id is the digest of exactly these fields, so whatever built the second one computed it wrongly; the first registration stands.");
}
