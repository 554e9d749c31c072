using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Skiff.Build.Processes;
using Skiff.Build.Restore;

namespace Skiff.Build.Sources;

/// <summary>
/// The fast way to rebuild when only the project's own C# files changed: run the compiler (on the warm
/// compiler server, asked from this process by <see cref="CompilerServerClient"/>) with the exact arguments
/// MSBuild gave it last time, and copy its outputs where MSBuild
/// would. This skips MSBuild's start-up, evaluation and up-to-date checks, about half of a one-line rebuild,
/// and produces the same bytes.
/// </summary>
/// <remarks>
/// <para>Each MSBuild build records, through a target Skiff adds, the compiler arguments and where the
/// outputs were copied, together with a stamp of everything else that could change what MSBuild does: every
/// file under the folder that holds the project and its project references (but the project's own C# files,
/// and <c>bin</c>, <c>obj</c>, <c>.git</c>), the restore outputs, the build files in the folders above and
/// the installed SDKs. Git is not an input: the build turns SourceLink and every git query off, so neither a
/// commit nor a remote can change the bytes. The next build compiles directly only when that stamp is
/// unchanged and the project's C# files are the same set; anything else goes through MSBuild, which records
/// afresh.</para>
/// <para>Not covered, as with MSBuild's own incremental build: environment variables that projects read as
/// properties. <c>SKIFF_DIRECT_COMPILE=0</c> turns this off.</para>
/// </remarks>
internal static class DirectCompile
{
    private const int MaxStampedFiles = 20_000;
    private const string RecordedByMsBuild = "msbuild-compile.txt";
    private const string RecordFile = "compile.json";

    private static readonly string[] BuildFilesAbove =
    [
        "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "global.json",
        "NuGet.Config", "nuget.config", "NuGet.config", ".editorconfig", ".globalconfig",
    ];

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>
    /// The target MSBuild imports after the common targets (through <c>CustomAfterMicrosoftCommonTargets</c>):
    /// when the project's compiler ran, it writes the compiler's arguments and the copies to the output folder.
    /// </summary>
    private const string RecordingTargets = """
        <Project>
          <Target Name="_SkiffRecordCompile" AfterTargets="CoreCompile"
                  Condition="'$(MSBuildProjectFullPath)' == '$(SkiffRecordProject)' and '@(CscCommandLineArgs)' != ''">
            <PropertyGroup>
              <_SkiffAssembly>@(IntermediateAssembly->'%(FullPath)')</_SkiffAssembly>
              <_SkiffSymbols>@(_DebugSymbolsIntermediatePath->'%(FullPath)')</_SkiffSymbols>
              <_SkiffSymbolsOut>@(_DebugSymbolsOutputPath->'%(FullPath)')</_SkiffSymbolsOut>
              <_SkiffDoc>@(DocFileItem->'%(FullPath)')</_SkiffDoc>
              <_SkiffDocOut>@(FinalDocFile->'%(FullPath)')</_SkiffDocOut>
            </PropertyGroup>
            <WriteLinesToFile File="$(SkiffRecordFile)" Overwrite="true"
                              Lines="roslyn:$(RoslynTargetsPath);csctoolpath:$(CscToolPath);copy:$(_SkiffAssembly)|$(TargetPath);copy:$(_SkiffSymbols)|$(_SkiffSymbolsOut);copy:$(_SkiffDoc)|$(_SkiffDocOut)" />
            <WriteLinesToFile File="$(SkiffRecordFile)" Lines="@(CscCommandLineArgs->'arg:%(Identity)')" />
          </Target>
        </Project>
        """;

    public static bool Enabled => DotnetCommand.BuildServers && Environment.GetEnvironmentVariable("SKIFF_DIRECT_COMPILE") != "0";

    /// <summary>The MSBuild arguments that make a build record what the next direct compile needs.</summary>
    public static IReadOnlyList<string> RecordingArguments(ResolvedClosure closure)
    {
        var folder = Folder(closure);
        Directory.CreateDirectory(folder);
        var targets = Path.Combine(folder, "record.targets");
        // Written only when different: MSBuild treats a newer import as a reason to recompile.
        if (!File.Exists(targets) || File.ReadAllText(targets) != RecordingTargets)
        {
            File.WriteAllText(targets, RecordingTargets);
        }

        File.Delete(Path.Combine(folder, RecordedByMsBuild));
        return
        [
            "-p:ProvideCommandLineArgs=true",
            $"-p:CustomAfterMicrosoftCommonTargets={targets}",
            $"-p:SkiffRecordProject={closure.ProjectPath}",
            $"-p:SkiffRecordFile={Path.Combine(folder, RecordedByMsBuild)}",
        ];
    }

    /// <summary>After a successful MSBuild build: keeps what a direct compile needs, or forgets it when MSBuild did not compile.</summary>
    public static void Record(ResolvedClosure closure)
    {
        var folder = Folder(closure);
        var recordPath = Path.Combine(folder, RecordFile);
        var recorded = Path.Combine(folder, RecordedByMsBuild);
        if (!File.Exists(recorded))
        {
            // MSBuild found the compiler's outputs up to date with every input it knows, so the last record (if
            // any) still describes them: only bring its stamps up to now.
            if (Load(closure) is { } last && InputsStamp(closure, last.Sources, last.Compiler) is { } now)
            {
                File.WriteAllText(recordPath, JsonSerializer.Serialize(last with { Inputs = now, SourcesStamp = SourcesStamp(last.Sources) }, JsonOptions));
            }

            return;
        }

        var lines = File.ReadAllLines(recorded);
        File.Delete(recorded);
        var roslyn = Value(lines, "roslyn:");
        var compiler = roslyn is null ? null : Path.GetFullPath(Path.Combine(roslyn, "bincore", "csc"));
        var copies = lines.Where(l => l.StartsWith("copy:", StringComparison.Ordinal))
            .Select(l => l["copy:".Length..].Split('|'))
            .Where(pair => pair is [{ Length: > 0 }, { Length: > 0 }])
            .Select(pair => new Copy(pair[0], pair[1]))
            .ToList();
        var arguments = lines.Where(l => l.StartsWith("arg:", StringComparison.Ordinal)).Select(l => l["arg:".Length..]).ToList();
        if (compiler is null || !File.Exists(compiler) || Value(lines, "csctoolpath:") is { Length: > 0 } || copies.Count == 0 || arguments.Count == 0)
        {
            // A compiler of the project's own choosing, or an SDK laid out differently: MSBuild only.
            File.Delete(recordPath);
            return;
        }

        var projectDirectory = Path.GetDirectoryName(closure.ProjectPath)!;
        var sources = arguments
            .Where(a => !a.StartsWith('/') && !a.StartsWith('-') && a.EndsWith(".cs", StringComparison.OrdinalIgnoreCase))
            .Select(a => Path.GetFullPath(a.Trim('"'), projectDirectory))
            .Where(path => !IsUnder(path, Path.Combine(projectDirectory, "obj")))
            .Order(StringComparer.Ordinal)
            .ToList();
        var inputs = InputsStamp(closure, sources, compiler);
        if (inputs is null)
        {
            File.Delete(recordPath);
            return;
        }

        var record = new CompileRecord(compiler, arguments, copies, sources, inputs, SourcesStamp(sources));
        File.WriteAllText(recordPath, JsonSerializer.Serialize(record, JsonOptions));
    }

    /// <summary>
    /// Compiles directly when the last build's record still holds, copying the outputs into
    /// <paramref name="output"/>. Returns null, having changed nothing, when MSBuild has to do the build.
    /// </summary>
    /// <exception cref="CompilationFailedException">The compiler ran and reported errors.</exception>
    public static async Task<CompileRoute?> TryRunAsync(ResolvedClosure closure, string output, CancellationToken cancellationToken)
    {
        if (!Enabled || Load(closure) is not { } record || !Directory.Exists(output) || !File.Exists(record.Compiler))
        {
            return null;
        }

        // A C# file deleted changes what MSBuild compiles; one added shows in the inputs' stamp.
        if (record.Copies.Any(c => !IsUnder(c.To, output) || !File.Exists(c.To))
            || !record.Sources.All(File.Exists)
            || InputsStamp(closure, record.Sources, record.Compiler) != record.Inputs)
        {
            return null;
        }

        var sourcesStamp = SourcesStamp(record.Sources);
        if (sourcesStamp == record.SourcesStamp)
        {
            return CompileRoute.UpToDate;
        }

        var folder = Folder(closure);
        var responseFile = Path.Combine(folder, "csc.rsp");
        // The compiler reads /noconfig only from its command line.
        await File.WriteAllLinesAsync(responseFile, record.Arguments.Where(a => a != "/noconfig"), cancellationToken).ConfigureAwait(false);
        var projectDirectory = Path.GetDirectoryName(closure.ProjectPath)!;
        var result = await CompilerServerClient.TryCompileAsync(Path.GetDirectoryName(record.Compiler)!, responseFile, projectDirectory, cancellationToken).ConfigureAwait(false) is { } served
            ? new DotnetCommand.Result(served.ExitCode, served.Output)
            : await DotnetCommand.RunAsync(record.Compiler, ["-nologo", "-noconfig", "-shared", "@" + responseFile], projectDirectory, cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new CompilationFailedException(
                $"{closure.ProjectPath} did not build; nothing was put into the store. Fix the errors below and build again.",
                BuildOutput.Diagnostics(result.Output));
        }

        foreach (var copy in record.Copies)
        {
            File.Copy(copy.From, copy.To, overwrite: true);
        }

        File.WriteAllText(Path.Combine(folder, RecordFile), JsonSerializer.Serialize(record with { SourcesStamp = sourcesStamp }, JsonOptions));
        return CompileRoute.CompilerOnly;
    }

    private static string Folder(ResolvedClosure closure) =>
        // One record per variant: a variant's build may have other compiler arguments (constants, references).
        Path.Combine(Path.GetDirectoryName(closure.ProjectPath)!, "obj", "skiff", closure.Rid, closure.BuildFolderName);

    private static CompileRecord? Load(ResolvedClosure closure)
    {
        try
        {
            return JsonSerializer.Deserialize<CompileRecord>(File.ReadAllText(Path.Combine(Folder(closure), RecordFile)));
        }
        catch (Exception exception) when (exception is IOException or JsonException or UnauthorizedAccessException)
        {
            return null; // None yet, or damaged: MSBuild builds and records a new one.
        }
    }

    private static string? Value(IEnumerable<string> lines, string prefix) =>
        lines.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..];

    private static bool IsUnder(string path, string folder) =>
        path.StartsWith(folder.TrimEnd('/') + "/", StringComparison.Ordinal);

    private static string SourcesStamp(IReadOnlyList<string> sources) =>
        Hash(sources.Select(Stamp));

    /// <summary>A stamp of every input of the build but the project's own C# files; null when there are too many to stamp cheaply.</summary>
    private static string? InputsStamp(ResolvedClosure closure, IReadOnlyList<string> sources, string compiler)
    {
        var skip = sources.ToHashSet(StringComparer.Ordinal);
        var lines = new List<string>();
        var root = SourceBuild.SourceRoot(closure);
        var pending = new Stack<string>([root]);
        while (pending.Count > 0)
        {
            var folder = pending.Pop();
            foreach (var entry in new DirectoryInfo(folder).EnumerateFileSystemInfos())
            {
                if (entry is DirectoryInfo directory)
                {
                    if (directory.Name is not ("bin" or "obj" or ".git") && !directory.Attributes.HasFlag(FileAttributes.ReparsePoint))
                    {
                        pending.Push(directory.FullName);
                    }
                }
                else if (!skip.Contains(entry.FullName))
                {
                    lines.Add(Stamp(entry.FullName));
                    if (lines.Count > MaxStampedFiles)
                    {
                        return null;
                    }
                }
            }
        }

        // What restore wrote, which MSBuild reads.
        foreach (var project in closure.ProjectReferences.Prepend(closure.ProjectPath))
        {
            var obj = Path.Combine(Path.GetDirectoryName(project)!, "obj");
            if (Directory.Exists(obj))
            {
                lines.AddRange(Directory.EnumerateFiles(obj, "*.nuget.g.*").Append(Path.Combine(obj, "project.assets.json")).Select(Stamp));
            }
        }

        // Build files in the folders above, which MSBuild imports or reads; one appearing counts too.
        for (var folder = Path.GetDirectoryName(root.TrimEnd('/')); !string.IsNullOrEmpty(folder); folder = Path.GetDirectoryName(folder))
        {
            lines.AddRange(BuildFilesAbove.Select(name => Path.Combine(folder, name)).Where(File.Exists).Select(Stamp));
        }

        // A newly installed SDK may be the one MSBuild would pick next time.
        var sdks = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(compiler)!, "..", "..", ".."));
        lines.AddRange(Directory.EnumerateDirectories(sdks).Order(StringComparer.Ordinal).Select(d => "sdk " + d));
        lines.Add(Stamp(compiler));
        lines.Sort(StringComparer.Ordinal);
        return Hash(lines);
    }

    private static string Stamp(string path)
    {
        var file = new FileInfo(path);
        return file.Exists ? $"{path}|{file.Length}|{file.LastWriteTimeUtc.Ticks}" : $"{path}|absent";
    }

    private static string Hash(IEnumerable<string> lines) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', lines))));

    internal sealed record Copy(string From, string To);

    internal sealed record CompileRecord(string Compiler, IReadOnlyList<string> Arguments, IReadOnlyList<Copy> Copies, IReadOnlyList<string> Sources, string Inputs, string SourcesStamp);
}
