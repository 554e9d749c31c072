using System.Text.RegularExpressions;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Docs;

/// <summary>The README's C# is what a newcomer copies first: every ```csharp block must build against the SDK.</summary>
public sealed partial class ReadmeSnippetTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Every_csharp_block_in_the_README_builds_as_a_job_project_against_the_SDK()
    {
        var readme = File.ReadAllText(Path.Combine(Workspace.RepositoryRoot, "README.md")).ReplaceLineEndings("\n");
        var snippets = Snippet().Matches(readme)
            .Select(m => (Line: readme[..m.Index].Count(c => c == '\n') + 1, Code: m.Groups["code"].Value))
            .ToList();
        // The SDK as this checkout built it, referenced as a package would be: its assembly plus its one dependency.
        var sdk = typeof(Skiff.Sdk.SkiffApp).Assembly.Location;
        var logging = System.Xml.Linq.XDocument.Load(Path.Combine(Workspace.RepositoryRoot, "Directory.Packages.props"))
            .Descendants("PackageVersion").Single(p => (string?)p.Attribute("Include") == "Microsoft.Extensions.Logging.Abstractions")
            .Attribute("Version")!.Value;

        var failures = new List<string>();
        for (var i = 0; i < snippets.Count; i++)
        {
            var folder = _workspace.PathTo($"Snippet{i + 1}");
            Directory.CreateDirectory(folder);
            await File.WriteAllTextAsync(Path.Combine(folder, $"Snippet{i + 1}.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <Nullable>enable</Nullable>
                    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                    <RestorePackagesWithLockFile>false</RestorePackagesWithLockFile>
                  </PropertyGroup>
                  <ItemGroup>
                    <Reference Include="Skiff.Sdk" HintPath="{sdk}" />
                    <PackageReference Include="Microsoft.Extensions.Logging.Abstractions" Version="{logging}" />
                  </ItemGroup>
                </Project>
                """);
            await File.WriteAllTextAsync(Path.Combine(folder, "Program.cs"), snippets[i].Code);

            var build = await CliProcess.RunAsync("dotnet", ["build", folder, "-nologo", "-v:q", "-clp:NoSummary"], folder);
            if (build.ExitCode != 0)
            {
                failures.Add($"the csharp block at README.md line {snippets[i].Line} does not build:\n{build.Stdout}{build.Stderr}");
            }
        }

        snippets.ShouldNotBeEmpty("the README shows how to write a job");
        failures.ShouldBeEmpty();
    }

    [GeneratedRegex(@"^```csharp\n(?<code>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex Snippet();
}
