namespace Skiff.Bench;

/// <summary>Finds this checkout and copies samples out of it, with the SDK they reference, laid out as in the repository.</summary>
internal static class Repository
{
    public static string Root { get; } = FindRoot();

    /// <summary>Copies samples/NAME into <paramref name="destination"/> and returns the sample's folder.</summary>
    public static string CopySample(string name, string destination)
    {
        foreach (var file in (string[])["Directory.Build.props", "Directory.Packages.props", "global.json", ".editorconfig", "samples/Directory.Build.props", "samples/Directory.Packages.props"])
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(destination, file))!);
            File.Copy(Path.Combine(Root, file), Path.Combine(destination, file));
        }

        CopyTree(Path.Combine(Root, "src", "Skiff.Sdk"), Path.Combine(destination, "src", "Skiff.Sdk"));
        var sample = Path.Combine(destination, "samples", name);
        CopyTree(Path.Combine(Root, "samples", name), sample);
        return sample;
    }

    private static void CopyTree(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (var file in Directory.EnumerateFiles(source))
        {
            File.Copy(file, Path.Combine(destination, Path.GetFileName(file)));
        }

        foreach (var folder in Directory.EnumerateDirectories(source).Where(f => Path.GetFileName(f) is not ("bin" or "obj")))
        {
            CopyTree(folder, Path.Combine(destination, Path.GetFileName(folder)));
        }
    }

    private static string FindRoot()
    {
        for (var folder = AppContext.BaseDirectory; folder is not null; folder = Path.GetDirectoryName(folder))
        {
            if (File.Exists(Path.Combine(folder, "Skiff.slnx")))
            {
                return folder;
            }
        }

        throw new InvalidOperationException("run the benchmark from a Skiff checkout");
    }
}
