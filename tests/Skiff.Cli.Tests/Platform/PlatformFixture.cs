using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>One embedded platform and one copy of samples/Hello for the tests of a class.</summary>
public sealed class PlatformFixture : IAsyncLifetime
{
    private readonly Workspace _workspace = new();

    internal EmbeddedPlatform Platform { get; private set; } = null!;

    internal Workspace Workspace => _workspace;

    public string Hello { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Hello = _workspace.CopySample("Hello", "hello-repo");
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
