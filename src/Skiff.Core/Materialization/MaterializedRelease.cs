namespace Skiff.Core.Materialization;

/// <summary>
/// A release laid out on disk, ready for the host: its source folder and the shared folder of
/// content-addressed packages that the deps file points into.
/// </summary>
internal sealed record MaterializedRelease(Digest Release, string SourceDirectory, string PackagesDirectory, string EntryAssembly)
{
    /// <summary>
    /// The variable through which the generic host (and WebApplication, which reads <c>DOTNET_</c> variables
    /// too) takes its content root, where it looks for <c>appsettings.json</c>.
    /// </summary>
    public const string ContentRootVariable = "DOTNET_CONTENTROOT";

    private string AppName => Path.GetFileNameWithoutExtension(EntryAssembly);

    /// <summary>
    /// The arguments to <c>dotnet</c> that run the release: the host takes the app's own files from the
    /// source folder and every package from <see cref="PackagesDirectory"/> through the probing path.
    /// </summary>
    public IReadOnlyList<string> ExecArguments(IEnumerable<string> appArguments) =>
    [
        "exec",
        "--runtimeconfig", RuntimeConfigFile,
        "--depsfile", DepsFile,
        "--additionalprobingpath", PackagesDirectory,
        EntryAssemblyFile,
        .. appArguments,
    ];

    public string RuntimeConfigFile => Path.Combine(SourceDirectory, AppName + ".runtimeconfig.json");

    public string DepsFile => Path.Combine(SourceDirectory, AppName + ".deps.json");

    public string EntryAssemblyFile => Path.Combine(SourceDirectory, EntryAssembly);

    /// <summary>
    /// Environment variables the app needs to find what <c>dotnet run</c> would show it. Under
    /// <c>dotnet run</c> the generic host's content root is the working directory, normally the project
    /// folder, which holds <c>appsettings.json</c> and the other content files. A release has no project
    /// folder: its content files were copied into <see cref="SourceDirectory"/>, so that is the content root.
    /// The working directory itself is left to the caller, so relative paths an app is given keep their
    /// meaning, and the shared, content-addressed source folder is never where an app writes by accident.
    /// </summary>
    public IReadOnlyDictionary<string, string> ExecEnvironment() => new Dictionary<string, string>
    {
        [ContentRootVariable] = SourceDirectory,
    };
}
