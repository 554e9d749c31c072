namespace Skiff.Core.Materialization;

/// <summary>
/// A release laid out on disk, ready for the host: its source folder and the shared folder of
/// content-addressed packages that the deps file points into.
/// </summary>
internal sealed record MaterializedRelease(Digest Release, string SourceDirectory, string PackagesDirectory, string EntryAssembly)
{
    private string AppName => Path.GetFileNameWithoutExtension(EntryAssembly);

    /// <summary>
    /// The arguments to <c>dotnet</c> that run the release: the host takes the app's own files from the
    /// source folder and every package from <see cref="PackagesDirectory"/> through the probing path.
    /// </summary>
    public IReadOnlyList<string> ExecArguments(IEnumerable<string> appArguments) =>
    [
        "exec",
        "--runtimeconfig", Path.Combine(SourceDirectory, AppName + ".runtimeconfig.json"),
        "--depsfile", Path.Combine(SourceDirectory, AppName + ".deps.json"),
        "--additionalprobingpath", PackagesDirectory,
        Path.Combine(SourceDirectory, EntryAssembly),
        .. appArguments,
    ];
}
