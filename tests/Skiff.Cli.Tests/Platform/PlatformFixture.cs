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
    private readonly Dictionary<string, string> _sharedVariants = [];

    /// <summary>samples/Hello as it is, for any test that deploys it unchanged; never write to it.</summary>
    internal static string SharedHello => SharedHelloCopy.Value;

    internal EmbeddedPlatform Platform { get; private set; } = null!;

    internal Workspace Workspace => _workspace;

    public string Hello { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Hello = SharedHello;
        Platform = await EmbeddedPlatform.StartAsync(_workspace.PathTo("platform"));
    }

    public async Task DisposeAsync()
    {
        await Platform.DisposeAsync();
        _workspace.Dispose();
    }

    /// <summary>
    /// <see cref="Variant"/> made once for the class's tests that ask for <paramref name="name"/>: the first deploy builds
    /// it, later ones (to other platforms too) find it built. For tests that deploy the same program and never edit it.
    /// </summary>
    public string SharedVariant(string name, Func<string, string> edit)
    {
        lock (_sharedVariants)
        {
            if (!_sharedVariants.TryGetValue(name, out var folder))
            {
                folder = Variant(name, edit);
                _sharedVariants.Add(name, folder);
            }

            return folder;
        }
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
