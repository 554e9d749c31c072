using System.Text.Json;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Commands;

/// <summary>
/// A project's <c>SatelliteResourceLanguages</c> holds for package satellites as it does under `dotnet run`,
/// while the package's blob stays the one every project shares.
/// </summary>
public sealed class SatelliteTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    private string Home => _workspace.PathTo("home");

    // System.CommandLine 2.0.0 ships its help texts in 13 cultures; German says "Optionen:" for "Options:".
    private const string HelpApp = """
        using System.CommandLine;
        using System.Globalization;

        CultureInfo.CurrentUICulture = CultureInfo.DefaultThreadCurrentUICulture = new CultureInfo("de-DE");
        return new RootCommand("satellites").Parse("--help").Invoke();
        """;

    private static string Project(string languages) => $"""
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <OutputType>Exe</OutputType>
            <TargetFramework>net10.0</TargetFramework>
            <ImplicitUsings>enable</ImplicitUsings>
            {languages}
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="System.CommandLine" Version="2.0.0" />
          </ItemGroup>
        </Project>
        """;

    [Fact]
    public async Task An_app_built_for_en_shows_English_under_de_DE_and_shares_the_package_blob_with_one_built_for_every_language()
    {
        var english = await BuildAsync(_workspace.WriteProject("English", Project("<SatelliteResourceLanguages>en</SatelliteResourceLanguages>"), HelpApp));
        var every = await BuildAsync(_workspace.WriteProject("Every", Project(""), HelpApp));

        english.Package.ShouldBe(every.Package, "the package blob must not depend on the project's languages");
        // Both run from one cache, so from one unpacked folder of the package.
        var englishRun = await ExecAsync(english.Release);
        var everyRun = await ExecAsync(every.Release);

        englishRun.Stdout.ShouldContain("Options:", Case.Sensitive, englishRun.ToString());
        englishRun.Stdout.ShouldNotContain("Optionen:");
        everyRun.Stdout.ShouldContain("Optionen:", Case.Sensitive, everyRun.ToString());
    }

    private async Task<(string Release, string Package)> BuildAsync(string project)
    {
        var build = await CliProcess.RunSkiffAsync(_workspace.Root, Home, "build", project, "--json");
        build.ExitCode.ShouldBe(0, build.ToString());
        using var json = JsonDocument.Parse(build.Stdout);
        var package = json.RootElement.GetProperty("environment").GetProperty("packages").EnumerateArray()
            .Single(p => p.GetProperty("id").GetString() == "System.CommandLine");
        return (json.RootElement.GetProperty("release").GetString()!, package.GetProperty("digest").GetString()!);
    }

    private async Task<CliProcess.Result> ExecAsync(string release)
    {
        var run = await CliProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "skiff.dll"), "exec", release],
            _workspace.Root,
            Home,
            new Dictionary<string, string> { ["LANG"] = "de_DE.UTF-8", ["LC_ALL"] = "de_DE.UTF-8" });
        run.ExitCode.ShouldBe(0, run.ToString());
        return run;
    }
}
