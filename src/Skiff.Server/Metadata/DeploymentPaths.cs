namespace Skiff.Server.Metadata;

/// <summary>How a deployment reached its location; the values of <see cref="DeploymentRecord.Path"/>.</summary>
internal static class DeploymentPaths
{
    /// <summary>The environment was new to the platform: its packages were uploaded and materialized.</summary>
    public const string Full = "full";

    /// <summary>Only the source changed: the source blob was uploaded, the environment reused.</summary>
    public const string Fast = "fast";

    /// <summary>The release was already stored; nothing was uploaded.</summary>
    public const string Unchanged = "unchanged";

    /// <summary>An earlier deployment's release was put back (see <see cref="DeploymentRecord.RollbackOf"/>).</summary>
    public const string Rollback = "rollback";

    public static bool IsKnown(string path) => path is Full or Fast or Unchanged or Rollback;
}
