using Skiff.Core;

namespace Skiff.Build.Projects;

/// <summary>Turns what a user typed (a folder or a project file) into one project file.</summary>
internal static class ProjectLocator
{
    private static readonly string[] ProjectExtensions = [".csproj", ".fsproj", ".vbproj"];

    public static string Locate(string path)
    {
        var full = Path.GetFullPath(path);
        if (File.Exists(full))
        {
            return ProjectExtensions.Contains(Path.GetExtension(full), StringComparer.OrdinalIgnoreCase)
                ? full
                : throw new ProjectNotFoundException($"{full} is not a project file; pass a .csproj or the folder that holds one.");
        }

        if (!Directory.Exists(full))
        {
            throw new ProjectNotFoundException($"{full} does not exist; pass a .csproj or the folder that holds one.");
        }

        var candidates = Directory.EnumerateFiles(full)
            .Where(file => ProjectExtensions.Contains(Path.GetExtension(file), StringComparer.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal)
            .ToList();
        return candidates switch
        {
            [var only] => only,
            [] => throw new ProjectNotFoundException($"{full} holds no project file (.csproj); pass the folder of a .NET project or its .csproj."),
            _ => throw new ProjectNotFoundException(
                $"{full} holds {candidates.Count} project files ({string.Join(", ", candidates.Select(Path.GetFileName))}); pass the one to build."),
        };
    }
}

/// <summary>The path given does not lead to exactly one project file.</summary>
internal sealed class ProjectNotFoundException(string message) : SkiffException(message);
