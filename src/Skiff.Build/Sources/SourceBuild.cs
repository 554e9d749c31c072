using Skiff.Build.Processes;
using Skiff.Build.Restore;

namespace Skiff.Build.Sources;

/// <summary>
/// Compiles the project deterministically into a private output folder that holds only the project's
/// own part: <c>CopyLocalLockFileAssemblies=false</c> leaves every package asset out of it.
/// </summary>
internal static class SourceBuild
{
    /// <summary>Builds into the output folder, the fastest way that gives the bytes a full build would.</summary>
    public static async Task<SourceBuildResult> RunAsync(ResolvedClosure closure, CancellationToken cancellationToken)
    {
        var projectDirectory = Path.GetDirectoryName(closure.ProjectPath)!;
        var output = OutputFolder(closure);
        if (await DirectCompile.TryRunAsync(closure, output, cancellationToken).ConfigureAwait(false) is { } direct)
        {
            return new SourceBuildResult(output, direct);
        }

        // Start empty: a file the project stopped producing must not linger into the source blob.
        // Compilation stays incremental; its state lives in obj/.
        if (Directory.Exists(output))
        {
            Directory.Delete(output, recursive: true);
        }

        var result = await DotnetCommand.RunAsync(
            [
                "build", closure.ProjectPath,
                "--no-restore",
                "-c", "Release",
                "-o", output,
                .. MsBuildArguments.ForRid(closure.Rid),
                .. closure.Variant.MsBuildArguments,
                .. closure.Experiment?.MsBuildArguments ?? [],
                "-p:CopyLocalLockFileAssemblies=false",
                "-p:Deterministic=true",
                // Absolute paths end up in PDBs and in CallerFilePath strings; mapping the folder that holds the
                // project and its project references makes the bytes the same wherever the checkout lives.
                $"-p:PathMap={SourceRoot(closure)}=/_/",
                // In a git checkout the SDK appends the commit to the informational version: a commit with no
                // code change would change the source digest.
                "-p:IncludeSourceRevisionInInformationalVersion=false",
                // In a git work tree SourceLink writes the remote's URL into the PDB and embeds the untracked
                // generated files of obj/: a fork, another remote or a copy outside git gave another source
                // digest for the same files. No git query at all: the commit is deployment metadata instead.
                "-p:EnableSourceControlManagerQueries=false",
                "-p:EnableSourceLink=false",
                .. DirectCompile.Enabled ? DirectCompile.RecordingArguments(closure) : [],
                "-clp:NoSummary",
                "-v:quiet",
            ],
            projectDirectory,
            cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new CompilationFailedException(
                $"{closure.ProjectPath} did not build; nothing was put into the store. Fix the errors below and build again.",
                BuildOutput.Diagnostics(result.Output));
        }

        if (DirectCompile.Enabled)
        {
            DirectCompile.Record(closure);
        }

        return new SourceBuildResult(output, CompileRoute.MsBuild);
    }

    public static string OutputFolder(ResolvedClosure closure) =>
        Path.Combine(Path.GetDirectoryName(closure.ProjectPath)!, "obj", "skiff", closure.Rid, closure.BuildFolderName, "out");

    /// <summary>The deepest folder that holds the project and every project it references.</summary>
    internal static string SourceRoot(ResolvedClosure closure)
    {
        var folders = closure.ProjectReferences.Prepend(closure.ProjectPath)
            .Select(p => Path.GetDirectoryName(p)!.TrimEnd('/') + "/")
            .ToList();
        var root = folders[0];
        foreach (var folder in folders.Skip(1))
        {
            while (!folder.StartsWith(root, StringComparison.Ordinal))
            {
                root = Path.GetDirectoryName(root.TrimEnd('/'))!.TrimEnd('/') + "/";
            }
        }

        return root.TrimEnd('/') is { Length: > 0 } trimmed ? trimmed : "/";
    }
}

/// <summary>How the project was brought up to date.</summary>
internal enum CompileRoute
{
    /// <summary>A full MSBuild build.</summary>
    MsBuild,

    /// <summary>Only C# files changed: the compiler ran directly with MSBuild's last arguments.</summary>
    CompilerOnly,

    /// <summary>Nothing changed since the last build; its outputs were reused.</summary>
    UpToDate,
}

/// <summary>The output folder and how it was made.</summary>
internal sealed record SourceBuildResult(string Output, CompileRoute Route);
