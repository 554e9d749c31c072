namespace Skiff.Server.Metadata;

/// <summary>
/// How a deployment reached its location; the values of <see cref="DeploymentRecord.Path"/>. The server decides
/// it from the releases it had registered before (<see cref="Deployments.Deployer"/>), not from what a client says.
/// </summary>
internal static class DeploymentPaths
{
    /// <summary>The environment was new to the platform: no release registered before used it.</summary>
    public const string Full = "full";

    /// <summary>The release was new, its environment was not: only the source changed.</summary>
    public const string Fast = "fast";

    /// <summary>The release was registered already (deployed before, here or to another location).</summary>
    public const string Unchanged = "unchanged";

    /// <summary>An earlier deployment's release was put back (see <see cref="DeploymentRecord.RollbackOf"/>).</summary>
    public const string Rollback = "rollback";

    /// <summary>
    /// The live release activated again with a changed location environment (see <see cref="DeploymentRecord.EnvChange"/>,
    /// docs/env.md): health-gated like any deployment.
    /// </summary>
    public const string Env = "env";

    public static bool IsKnown(string path) => path is Full or Fast or Unchanged or Rollback or Env;
}
