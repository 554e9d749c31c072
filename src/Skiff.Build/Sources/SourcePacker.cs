using System.Reflection;
using Skiff.Core;
using Skiff.Core.Archives;
using Skiff.Core.Blobs;
using Skiff.Core.Manifests;

namespace Skiff.Build.Sources;

/// <summary>
/// Packs the project's own output (its assemblies, project-reference assemblies, the rewritten deps file,
/// the runtimeconfig and content files) into the source blob.
/// </summary>
internal static class SourcePacker
{
    private const string DepsSuffix = ".deps.json";
    private const string RuntimeConfigSuffix = ".runtimeconfig.json";

    public static async Task<PreparedSource> PackAsync(
        string outputFolder,
        string projectPath,
        EnvironmentManifest environment,
        FileBlobStore store,
        IReadOnlySet<string> developmentOnly,
        IReadOnlyList<(PackageEntry Entry, IReadOnlyList<Restore.DepsAsset> Assets)> experimental,
        CancellationToken cancellationToken)
    {
        var entryName = EntryName(outputFolder, projectPath);
        var depsFileName = entryName + DepsSuffix;
        var rewrittenDeps = store.NewTempPath();
        try
        {
            var original = await File.ReadAllBytesAsync(Path.Combine(outputFolder, depsFileName), cancellationToken).ConfigureAwait(false);
            await File.WriteAllBytesAsync(rewrittenDeps, DepsFile.Rewrite(original, environment, depsFileName, developmentOnly, experimental), cancellationToken).ConfigureAwait(false);

            var files = Directory.EnumerateFiles(outputFolder, "*", SearchOption.AllDirectories)
                .Select(file => Path.GetRelativePath(outputFolder, file).Replace('\\', '/'))
                // Project references build into the same folder; their deps and runtimeconfig files describe
                // them as apps and are never read when this project runs.
                .Where(path => path == entryName + RuntimeConfigSuffix
                    || !(path.EndsWith(DepsSuffix, StringComparison.Ordinal) || path.EndsWith(RuntimeConfigSuffix, StringComparison.Ordinal)))
                .Select(path => new ArchiveFile(path, Path.Combine(outputFolder, path)))
                .Append(new ArchiveFile(depsFileName, rewrittenDeps))
                .ToList();

            var staged = store.NewTempPath();
            var stream = new FileStream(staged, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 1 << 16, useAsync: true);
            await using (stream.ConfigureAwait(false))
            {
                await ArchiveWriter.WriteAsync(stream, files, cancellationToken).ConfigureAwait(false);
                stream.Position = 0;
                var digest = await Digest.ComputeAsync(stream, cancellationToken).ConfigureAwait(false);
                return new PreparedSource(digest, stream.Length, staged, entryName + ".dll", files.Count, SdkVersion(outputFolder));
            }
        }
        finally
        {
            File.Delete(rewrittenDeps);
        }
    }

    private static string? SdkVersion(string outputFolder)
    {
        var sdk = Path.Combine(outputFolder, "Skiff.Sdk.dll");
        return File.Exists(sdk) ? AssemblyName.GetAssemblyName(sdk).Version?.ToString(3) : null;
    }

    /// <summary>
    /// The entry assembly's name without extension: the app whose runtimeconfig the build wrote. A referenced
    /// executable writes one too, so ties go to the project's own name.
    /// </summary>
    private static string EntryName(string outputFolder, string projectPath)
    {
        var apps = Directory.EnumerateFiles(outputFolder, "*" + RuntimeConfigSuffix)
            .Select(file => Path.GetFileName(file)[..^RuntimeConfigSuffix.Length])
            .Where(name => File.Exists(Path.Combine(outputFolder, name + ".dll")))
            .Order(StringComparer.Ordinal)
            .ToList();
        var projectName = Path.GetFileNameWithoutExtension(projectPath);
        return apps switch
        {
            [var only] => only,
            [] => throw new CompilationFailedException(
                $"{projectPath} built no runnable app (no .runtimeconfig.json in its output); Skiff runs console apps: set <OutputType>Exe</OutputType>.",
                diagnostics: ""),
            _ when apps.Contains(projectName) => projectName,
            _ => throw new CompilationFailedException(
                $"{projectPath} built several apps ({string.Join(", ", apps)}) and none is named after the project; set <AssemblyName>{projectName}</AssemblyName> or build the app's own project.",
                diagnostics: ""),
        };
    }
}
