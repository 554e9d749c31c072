namespace Skiff.Server.Metadata;

/// <summary>How a deployment ended; the values of <see cref="DeploymentRecord.Outcome"/>.</summary>
internal static class DeploymentOutcomes
{
    /// <summary>Recorded, not yet decided: the version is being activated.</summary>
    public const string Pending = "pending";

    /// <summary>The version loaded, reported its definitions and became its location's live version.</summary>
    public const string Live = "live";

    /// <summary>The version did not become live; whatever was live before still is.</summary>
    public const string Failed = "failed";

    public static bool IsKnown(string outcome) => outcome is Pending or Live or Failed;
}
