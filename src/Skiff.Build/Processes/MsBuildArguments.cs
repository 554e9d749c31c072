namespace Skiff.Build.Processes;

/// <summary>
/// The global properties restore and build must agree on: a build with --no-restore fails when the
/// assets file was written for other ones.
/// </summary>
internal static class MsBuildArguments
{
    public static IReadOnlyList<string> ForRid(string rid) => ["-r", rid, .. BesidesRid];

    /// <summary>Everything <see cref="ForRid"/> passes but the runtime identifier itself.</summary>
    public static IReadOnlyList<string> BesidesRid { get; } =
    [
        // Framework-dependent: the machine's shared runtime runs the app; the packages come from the environment.
        "-p:SelfContained=false",
        // `dotnet exec` starts the app; an apphost would only add a native file to every source blob.
        "-p:UseAppHost=false",
        "-nologo",
    ];
}
