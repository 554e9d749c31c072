namespace Skiff.Agent.CodeServers;

/// <summary>
/// A launch spelled out for a standby process (<see cref="StandbyPool"/>): the parts of
/// <c>dotnet exec --runtimeconfig … --depsfile … --additionalprobingpath … ENTRY ARGS</c> one by one, and which
/// environment variables belong to the release rather than to the process.
/// </summary>
/// <param name="RuntimeConfig">The release's <c>.runtimeconfig.json</c>: read by the host when the process starts.</param>
/// <param name="DepsFile">The release's <c>.deps.json</c>.</param>
/// <param name="ProbingPath">Where the deps file's packages are.</param>
/// <param name="EntryAssembly">The release's entry assembly, a full path.</param>
/// <param name="AppArguments">What Main gets before <c>serve --connect SOCKET</c>.</param>
/// <param name="ReleaseVariables">Variables read by managed code only, set when the standby takes the release
/// (the release id, the location, the content root). Every other variable is the process's, fixed when it starts,
/// and a standby serves only a launch whose other variables are the same.</param>
internal sealed record StandbyShape(
    string RuntimeConfig,
    string DepsFile,
    string ProbingPath,
    string EntryAssembly,
    IReadOnlyList<string> AppArguments,
    IReadOnlySet<string> ReleaseVariables);
