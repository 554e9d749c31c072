using System.CommandLine;

namespace Skiff.Cli.Commands;

/// <summary>Options several commands share, with the same names and defaults everywhere.</summary>
internal static class CommonOptions
{
    /// <summary>Skiff's data folder: <c>$SKIFF_HOME</c>, else <c>~/.skiff</c>.</summary>
    public static string DataDirectory =>
        Environment.GetEnvironmentVariable("SKIFF_HOME") is { Length: > 0 } home
            ? Path.GetFullPath(home)
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".skiff");

    public static Option<string> Store() => new("--store")
    {
        Description = "The blob store folder (default: ~/.skiff/store, or $SKIFF_HOME/store).",
        DefaultValueFactory = _ => Path.Combine(DataDirectory, "store"),
    };
}
