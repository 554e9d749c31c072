using System.CommandLine;
using Skiff.Build.Releases;

namespace Skiff.Cli.Commands;

/// <summary>
/// <c>--locked</c> for <c>build</c> and <c>deploy</c>, and the one notice a project without a lock file gets.
/// </summary>
internal static class LockOptions
{
    public static Option<bool> Locked() => new("--locked")
    {
        Description = "Refuse a project without a packages.lock.json. A project with one is always restored exactly as locked.",
    };

    /// <summary>
    /// Tells, once per project and data folder, that an unlocked project's environment follows the registry:
    /// said on every deploy it would only be noise in a dev loop.
    /// </summary>
    public static void NoticeIfUnlocked(BuildResult build, string projectPath)
    {
        if (build.Environment.Locked)
        {
            return;
        }

        var project = Path.GetFullPath(projectPath);
        var told = Path.Combine(CommonOptions.DataDirectory, "notices", "unlocked-projects.txt");
        if (File.Exists(told) && File.ReadLines(told).Contains(project, StringComparer.Ordinal))
        {
            return;
        }

        Console.Error.WriteLine(
            $"note: {project} has no packages.lock.json, so its environment follows whatever the package registry serves on the day it is restored. "
            + "To lock it, add <RestorePackagesWithLockFile>true</RestorePackagesWithLockFile> to the project, run `dotnet restore` and commit packages.lock.json; "
            + "`--locked` then refuses any deploy whose packages would move.");
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(told)!);
            File.AppendAllLines(told, [project]);
        }
        catch (IOException)
        {
            // Not remembering only means the note comes again.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
