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

    public static Option<string> Store() => Folder("--store", "The blob store folder.", "store");

    /// <summary><c>--variant NAME</c>: which of the project's <c>&lt;SkiffVariants&gt;</c> to build (docs/build.md, "Variants").</summary>
    public static Option<string?> Variant() => new("--variant")
    {
        Description = "The environment variant to build, one the project declares in <SkiffVariants> (default: the first it declares).",
        HelpName = "name",
    };

    /// <summary>
    /// A folder option whose default is <paramref name="relative"/> under the data folder. Help shows that default
    /// once, resolved, so it follows <c>$SKIFF_HOME</c> as the command itself does.
    /// </summary>
    public static Option<string> Folder(string name, string description, string relative) => new(name)
    {
        Description = description,
        HelpName = "dir",
        DefaultValueFactory = _ => relative.Length == 0 ? DataDirectory : Path.Combine(DataDirectory, relative),
    };
}
