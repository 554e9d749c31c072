using Skiff.Testing;

namespace Skiff.Cli.Tests.Platform;

/// <summary>One embedded platform for the tests of a class, and samples/Hello (one copy for every class, never edited).</summary>
public sealed class PlatformFixture : IAsyncLifetime
{
    // Every class deploys the same unchanged Hello: one copy for the whole test run is restored and compiled once, and
    // later deploys of it build nothing (builds of one folder take turns, ProjectBuildLock). Edits go to Variant copies.
    private static readonly Lazy<Workspace> SharedWorkspace = new(() =>
    {
        var workspace = new Workspace();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => workspace.Dispose();
        return workspace;
    });

    private static readonly Lazy<string> SharedHelloCopy = new(() => SharedWorkspace.Value.CopySample("Hello", "hello-repo"));

    // The tests that follow or cancel a long run deploy samples/Backfill unchanged: one copy, built by the first deploy.
    private static readonly Lazy<string> SharedBackfillCopy = new(() => SharedWorkspace.Value.CopySample("Backfill", "backfill-repo"));

    // Shared by every class: the same edit of Hello deployed by two classes is built once.
    private static readonly Dictionary<string, (string Folder, string Program)> SharedVariants = [];

    private readonly Workspace _workspace = new();

    /// <summary>samples/Hello as it is, for any test that deploys it unchanged; never write to it.</summary>
    internal static string SharedHello => SharedHelloCopy.Value;

    /// <summary>samples/Backfill as it is (one copy for the whole test run); never write to it.</summary>
    internal static string SharedBackfill => SharedBackfillCopy.Value;

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
    /// <see cref="Variant"/> made once for every test of the run that asks for <paramref name="name"/>: the first deploy
    /// builds it, later ones (to other platforms too) find it built. For tests that deploy the same program and never
    /// edit it; one name is one program (asking for it with another edit throws).
    /// </summary>
    public static string SharedVariant(string name, Func<string, string> edit)
    {
        var program = edit(File.ReadAllText(Path.Combine(SharedHello, "Program.cs")));
        lock (SharedVariants)
        {
            if (SharedVariants.TryGetValue(name, out var made))
            {
                return made.Program == program
                    ? made.Folder
                    : throw new InvalidOperationException($"the shared variant '{name}' was made with another edit; give this one another name");
            }

            var folder = SharedWorkspace.Value.CopySample("Hello", $"variant-{name}");
            File.WriteAllText(Path.Combine(folder, "Program.cs"), program);
            SharedVariants.Add(name, (folder, program));
            return folder;
        }
    }

    /// <summary>Hello whose job throws "broken on purpose" when it runs under Skiff: a version that never goes live.</summary>
    public static string BrokenOnPurpose => SharedVariant("broken-on-purpose", text => text.Replace(
        "return await SkiffApp.RunAsync",
        "if (args.Length > 0) throw new InvalidOperationException(\"broken on purpose\");\nreturn await SkiffApp.RunAsync",
        StringComparison.Ordinal));

    /// <summary>
    /// Hello that greets "Howdy, {Name}!": a second release of the same project, for tests that need two and do not care
    /// what differs. Shared because a fresh copy costs a restore and a full build (tens of CPU seconds in CI).
    /// </summary>
    public static string Howdy => SharedVariant("howdy", text => text.Replace("Hello, {Name}!", "Howdy, {Name}!", StringComparison.Ordinal));

    /// <summary>Hello whose Main sleeps 8 s before it hands over to Skiff: its activation is still going when a test cuts something under it.</summary>
    public static string SlowToStart => SharedVariant("slow-to-start", text => text.Replace(
        "return await SkiffApp.RunAsync",
        "System.Threading.Thread.Sleep(8000);\nreturn await SkiffApp.RunAsync",
        StringComparison.Ordinal));

    /// <summary>A copy of Hello whose Program.cs is changed by <paramref name="edit"/>.</summary>
    public string Variant(string name, Func<string, string> edit)
    {
        var folder = _workspace.CopySample("Hello", $"variant-{name}");
        var program = Path.Combine(folder, "Program.cs");
        File.WriteAllText(program, edit(File.ReadAllText(program)));
        return folder;
    }
}
