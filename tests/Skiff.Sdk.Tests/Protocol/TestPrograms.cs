using Skiff.Agent.CodeServers;

namespace Skiff.Sdk.Tests.Protocol;

/// <summary>The programs these tests start: the Hello sample and the misbehaving test app, as built beside the tests.</summary>
internal static class TestPrograms
{
    private static readonly string Configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;

    public static string TestApp { get; } = Built("tests/Skiff.Sdk.TestApp", "Skiff.Sdk.TestApp.dll");

    public static string Hello { get; } = Built("samples/Hello", "Hello.dll");

    public static string Backfill { get; } = Built("samples/Backfill", "Backfill.dll");

    public static CodeServerLaunch Launch(string program, IReadOnlyDictionary<string, string>? environment = null) =>
        new("dotnet", [program], Path.GetDirectoryName(program)!)
        {
            Name = $"code server {Path.GetFileNameWithoutExtension(program)}",
            Environment = environment ?? new Dictionary<string, string>(),
        };

    public static Task<CodeServerProcess> StartAsync(string program, IReadOnlyDictionary<string, string>? environment = null) =>
        CodeServerProcess.StartAsync(Launch(program, environment), TimeSpan.FromSeconds(60), CancellationToken.None);

    private static string Built(string project, string assembly)
    {
        // AppContext.BaseDirectory is tests/Skiff.Sdk.Tests/bin/<Configuration>/net10.0/.
        var repository = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../.."));
        var path = Path.Combine(repository, project, "bin", Configuration, "net10.0", assembly);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} was not built; build the solution first.");
    }
}
