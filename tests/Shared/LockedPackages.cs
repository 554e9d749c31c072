using System.Text.Json;

namespace Skiff.Testing;

/// <summary>
/// What a project's committed packages.lock.json locks: tests take expected package ids and versions from
/// it, never from what the registry happens to serve.
/// </summary>
internal static class LockedPackages
{
    /// <summary>Package id → version for the framework, and the runtime identifier's own section when there is one.</summary>
    public static Dictionary<string, string> Read(string projectFolder, string framework = "net10.0", string? rid = null)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(projectFolder, "packages.lock.json")));
        var dependencies = document.RootElement.GetProperty("dependencies");
        var packages = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var section in (string?[])[framework, rid is null ? null : $"{framework}/{rid}"])
        {
            if (section is null || !dependencies.TryGetProperty(section, out var entries))
            {
                continue;
            }

            foreach (var entry in entries.EnumerateObject().Where(e => e.Value.GetProperty("type").GetString() != "Project"))
            {
                packages[entry.Name] = entry.Value.GetProperty("resolved").GetString()!;
            }
        }

        return packages;
    }

    /// <summary>
    /// Brings a project's lock file up to date after its references changed, as a developer does (the tests
    /// restore in locked mode, as CI does, so a build alone would refuse the change).
    /// </summary>
    public static async Task UpdateAsync(string projectFolder)
    {
        var restore = await CliProcess.RunAsync("dotnet", ["restore", projectFolder, "--force-evaluate", "-p:RestoreLockedMode=false"], projectFolder);
        restore.ExitCode.ShouldBe(0, restore.ToString());
    }

    /// <summary>The packages only the runtime identifier's section lists: those with RID-specific assets.</summary>
    public static IReadOnlyList<string> SpecificTo(string projectFolder, string rid, string framework = "net10.0")
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(projectFolder, "packages.lock.json")));
        return document.RootElement.GetProperty("dependencies").TryGetProperty($"{framework}/{rid}", out var entries)
            ? [.. entries.EnumerateObject().Select(e => e.Name)]
            : [];
    }
}
