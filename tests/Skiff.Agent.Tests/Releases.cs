using Skiff.Agent.Locations;
using Skiff.Build.Releases;
using Skiff.Core;
using Skiff.Core.Blobs;
using Skiff.Testing;

namespace Skiff.Agent.Tests;

/// <summary>
/// Real releases of the test app, built once for all agent tests into one store: two versions that differ
/// only in source, and versions that fail to start in each way an agent must survive.
/// </summary>
public sealed class Releases : IAsyncLifetime
{
    private readonly Workspace _workspace = new();

    internal FileBlobStore Store { get; private set; } = null!;

    internal Digest V1 { get; private set; }

    internal Digest V2 { get; private set; }

    internal Digest Throws { get; private set; }

    internal Digest Hangs { get; private set; }

    internal Digest BadDefinitions { get; private set; }

    internal Digest CrashLoop { get; private set; }

    internal BuildResult V1Build { get; private set; } = null!;

    internal BuildResult V2Build { get; private set; } = null!;

    public string Scratch => _workspace.PathTo("scratch");

    /// <summary>
    /// Settings under which <see cref="CrashLoop"/> serves until <paramref name="crashNow"/> is created, and every restart
    /// of it exits at once after that: a test activates it, then sets it crashing.
    /// </summary>
    internal LocationSettings CrashLoopSettings(out string crashNow)
    {
        crashNow = Path.Combine(Scratch, $"crash-{Guid.NewGuid():N}");
        return new LocationSettings { Environment = new Dictionary<string, string> { ["SKIFF_TESTAPP_CRASH_WHEN"] = crashNow } };
    }

    public async Task InitializeAsync()
    {
        Store = new FileBlobStore(_workspace.PathTo("store"));
        Directory.CreateDirectory(Scratch);
        var project = _workspace.CopyProject("tests/Skiff.Sdk.TestApp", "repo");
        V1Build = await BuildAsync(project, "v1");
        V1 = V1Build.Release;
        V2Build = await BuildAsync(project, "v2");
        V2 = V2Build.Release;
        Throws = (await BuildAsync(project, "throws")).Release;
        Hangs = (await BuildAsync(project, "hangs")).Release;
        BadDefinitions = (await BuildAsync(project, "bad_definitions")).Release;
        CrashLoop = (await BuildAsync(project, "crash_loop")).Release;
    }

    public Task DisposeAsync()
    {
        _workspace.Dispose();
        return Task.CompletedTask;
    }

    private async Task<BuildResult> BuildAsync(string project, string variant)
    {
        await File.WriteAllTextAsync(Path.Combine(project, "Variant.cs"), $$"""
            internal static class Variant
            {
                public static readonly string Name = "{{variant}}";
            }
            """);
        return await new ReleaseBuilder(Store).BuildAsync(new BuildRequest(project), report: null, CancellationToken.None);
    }
}

[CollectionDefinition(Name)]
public sealed class AgentCollection : ICollectionFixture<Releases>
{
    public const string Name = "agent";
}
