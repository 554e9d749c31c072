namespace Skiff.Testing;

/// <summary>
/// A temporary folder for one test: copies of the samples to build, stores, caches. Deleted on dispose.
/// </summary>
internal sealed class Workspace : IDisposable
{
    public Workspace()
    {
        Root = Path.Combine(Path.GetTempPath(), "skiff-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public string PathTo(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>Copies <c>samples/NAME</c> the way <see cref="CopyProject"/> does and returns the sample's folder.</summary>
    public string CopySample(string name, string? relativeDestination = null) =>
        CopyProject($"samples/{name}", relativeDestination ?? name);

    /// <summary>
    /// Copies a project folder of the repository together with what it references (the SDK's sources and
    /// the build settings around them) into <paramref name="relativeDestination"/>, laid out as in the
    /// repository, and returns the project's folder. Each copy builds on its own: no two tests share an obj/.
    /// </summary>
    public string CopyProject(string repositoryFolder, string relativeDestination)
    {
        var root = PathTo(relativeDestination);
        var top = repositoryFolder.Split('/')[0];
        foreach (var file in (string[])["Directory.Build.props", "Directory.Packages.props", "global.json", ".editorconfig",
                     $"{top}/Directory.Build.props", $"{top}/Directory.Packages.props"])
        {
            if (File.Exists(Path.Combine(RepositoryRoot, file)) && !File.Exists(Path.Combine(root, file)))
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(root, file))!);
                File.Copy(Path.Combine(RepositoryRoot, file), Path.Combine(root, file));
            }
        }

        if (!Directory.Exists(Path.Combine(root, "src", "Skiff.Sdk")))
        {
            CopyTree(Path.Combine(RepositoryRoot, "src", "Skiff.Sdk"), Path.Combine(root, "src", "Skiff.Sdk"));
        }

        var project = Path.Combine(root, repositoryFolder);
        CopyTree(Path.Combine(RepositoryRoot, repositoryFolder), project);
        return project;
    }

    /// <summary>Writes a project from text; handy for projects that exist only to be broken.</summary>
    public string WriteProject(string name, string projectXml, string program)
    {
        var folder = PathTo(name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, name + ".csproj"), projectXml);
        File.WriteAllText(Path.Combine(folder, "Program.cs"), program);
        return folder;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A child process may still hold a file; the OS temp cleaner gets it later.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void CopyTree(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (var file in Directory.EnumerateFiles(source))
        {
            File.Copy(file, Path.Combine(destination, Path.GetFileName(file)));
        }

        foreach (var folder in Directory.EnumerateDirectories(source))
        {
            var name = Path.GetFileName(folder);
            if (name is "bin" or "obj")
            {
                continue;
            }

            CopyTree(folder, Path.Combine(destination, name));
        }
    }

    private static string FindRepositoryRoot()
    {
        for (var folder = AppContext.BaseDirectory; folder is not null; folder = Path.GetDirectoryName(folder))
        {
            if (File.Exists(Path.Combine(folder, "Skiff.slnx")))
            {
                return folder;
            }
        }

        throw new InvalidOperationException($"No Skiff.slnx above {AppContext.BaseDirectory}; run the tests from a checkout.");
    }
}
