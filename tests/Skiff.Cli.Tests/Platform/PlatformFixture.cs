using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>One embedded platform for the tests of a class, and samples/Hello (one copy for every class, never edited).</summary>
public sealed class PlatformFixture : IAsyncLifetime
{
    // Every class deploys the same unchanged Hello: one copy for the whole test run is restored and compiled once, and
    // later deploys of it build nothing (builds of one folder take turns, ProjectBuildLock). Edits go to Variant copies.
    private static readonly Lazy<string> SharedHelloCopy = new(() =>
    {
        var workspace = new Workspace();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => workspace.Dispose();
        return workspace.CopySample("Hello", "hello-repo");
    });

    private readonly Workspace _workspace = new();

    /// <summary>samples/Hello as it is, for any test that deploys it unchanged; never write to it.</summary>
    internal static string SharedHello => SharedHelloCopy.Value;

    internal EmbeddedPlatform Platform { get; private set; } = null!;

    internal Workspace Workspace => _workspace;

    public string Hello { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Hello = SharedHello;
        Platform = await EmbeddedPlatform.StartAsync(_workspace.PathTo("platform"), TimeSpan.FromSeconds(8));
    }

    public async Task DisposeAsync()
    {
        await Platform.DisposeAsync();
        _workspace.Dispose();
    }

    /// <summary>A copy of Hello whose Program.cs is changed by <paramref name="edit"/>.</summary>
    public string Variant(string name, Func<string, string> edit)
    {
        var folder = _workspace.CopySample("Hello", $"variant-{name}");
        var program = Path.Combine(folder, "Program.cs");
        File.WriteAllText(program, edit(File.ReadAllText(program)));
        return folder;
    }
}
