namespace Skiff.Build.Experiments;

/// <summary>
/// What the project's build gets for a set of experimental packages: an MSBuild file, imported before the common
/// targets, that references their compile assemblies without copying them (they reach the app through the deps file).
/// </summary>
/// <param name="Key">Names the set (a hash of its restore project), so each set has its own output folder and compile record.</param>
/// <param name="TargetsFile">The file that adds the references.</param>
internal sealed record ExperimentalBuild(string Key, string TargetsFile)
{
    public IReadOnlyList<string> MsBuildArguments => [$"-p:CustomBeforeMicrosoftCommonTargets={TargetsFile}"];
}
