using System.IO.Compression;
using System.Reflection.Metadata;
using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Cli.Tests.Packages;

/// <summary>
/// What a team outside this repository does with artifacts/packages: install the tool and the template,
/// create a project, test it, deploy it to the platform its own <c>skiff up</c> runs, run its job.
/// </summary>
public sealed class OutsideRepositoryTests(OutsideRepositoryFixture team) : IClassFixture<OutsideRepositoryFixture>
{
    [Fact]
    public async Task The_template_project_references_the_packed_sdk_with_lock_files_and_its_own_tests_pass()
    {
        var project = await File.ReadAllTextAsync(Path.Combine(team.Solution, "MyJobs", "MyJobs.csproj"));
        project.ShouldContain($"""<PackageReference Include="Skiff.Sdk" Version="{team.Version}" />""");
        project.ShouldContain("<RestorePackagesWithLockFile>true</RestorePackagesWithLockFile>");
        // The template ships its lock files, stamped with the SDK that was just packed, and the restore
        // after creating the project kept them as they are: nothing came from what the registry serves today.
        var sdk = await File.ReadAllBytesAsync(Path.Combine(team.Packages, $"Skiff.Sdk.{team.Version}.nupkg"));
        var sdkHash = Convert.ToBase64String(System.Security.Cryptography.SHA512.HashData(sdk));
        foreach (var folder in (string[])["MyJobs", "MyJobs.Tests"])
        {
            var shipped = (await File.ReadAllTextAsync(Path.Combine(Workspace.RepositoryRoot, "src", "Skiff.Templates", "content", "skiff-jobs", folder, "packages.lock.json")))
                .Replace("SKIFF_SDK_VERSION", team.Version, StringComparison.Ordinal)
                .Replace("SKIFF_SDK_CONTENT_HASH", sdkHash, StringComparison.Ordinal);
            (await File.ReadAllTextAsync(Path.Combine(team.Solution, folder, "packages.lock.json"))).ShouldBe(shipped, folder);
        }

        var locked = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(team.Solution, "MyJobs", "packages.lock.json")))!;
        ((string?)locked["dependencies"]!["net10.0"]!["Skiff.Sdk"]!["resolved"]).ShouldBe(team.Version);
        ((string?)locked["dependencies"]!["net10.0"]!["Skiff.Sdk"]!["contentHash"]).ShouldBe(sdkHash);

        var test = await team.DotnetAsync("test", Path.Combine(team.Solution, "MyJobs.slnx"));

        test.Stdout.ShouldContain("Passed!  - Failed:     0, Passed:     2");
    }

    [Fact]
    public async Task The_installed_tool_deploys_the_template_project_full_then_fast_and_runs_its_job()
    {
        var full = await team.SkiffAsync("deploy", Path.Combine(team.Solution, "MyJobs"), "--location", "team", "--json");
        full.ExitCode.ShouldBe(0, $"{full}\n--- skiff up\n{team.PlatformErrors}");
        var first = JsonNode.Parse(full.Stdout)!;
        ((string?)first["outcome"]).ShouldBe("live");
        ((string?)first["path"]).ShouldBe("full");
        first["jobs"]!.AsArray().Select(j => (string?)j).ShouldBe(["report"]);

        var run = await team.SkiffAsync("run", "team", "report", "--param", "rows=3");
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("Report: 3 rows, total 6");

        var jobs = Path.Combine(team.Solution, "MyJobs", "Jobs.cs");
        await File.WriteAllTextAsync(jobs, (await File.ReadAllTextAsync(jobs)).Replace("\"Read {Count} rows\"", "\"Read {Count} rows again\"", StringComparison.Ordinal));
        var fast = await team.SkiffAsync("deploy", Path.Combine(team.Solution, "MyJobs"), "--location", "team", "--json");
        fast.ExitCode.ShouldBe(0, fast.ToString());
        var second = JsonNode.Parse(fast.Stdout)!;
        ((string?)second["path"]).ShouldBe("fast");
        ((long?)second["uploaded"]!["blobs"]).ShouldBe(2, "the release manifest and the source blob; the environment (with Skiff.Sdk) is already there");

        var again = await team.SkiffAsync("run", "team", "report", "--param", "rows=3");
        again.ExitCode.ShouldBe(0, again.ToString());
        again.Stdout.ShouldContain("Read 3 rows again");
    }

    [Fact]
    public async Task The_sdk_package_has_its_readme_docs_and_symbols_with_repository_relative_source_paths()
    {
        using (var package = ZipFile.OpenRead(Path.Combine(team.Packages, $"Skiff.Sdk.{team.Version}.nupkg")))
        {
            package.Entries.Select(e => e.FullName).ShouldContain("README.md");
            package.Entries.Select(e => e.FullName).ShouldContain("lib/net10.0/Skiff.Sdk.dll");
            package.Entries.Select(e => e.FullName).ShouldContain("lib/net10.0/Skiff.Sdk.xml");
            // Deterministic: every entry has the one fixed time pack.sh gives, never the time of packing.
            package.Entries.Select(e => e.LastWriteTime.Year).Distinct().ShouldBe([2000]);
        }

        using var symbols = ZipFile.OpenRead(Path.Combine(team.Packages, $"Skiff.Sdk.{team.Version}.snupkg"));
        await using var pdb = new MemoryStream();
        await using (var entry = symbols.GetEntry("lib/net10.0/Skiff.Sdk.pdb")!.Open())
        {
            await entry.CopyToAsync(pdb);
        }

        pdb.Position = 0;
        using var provider = MetadataReaderProvider.FromPortablePdbStream(pdb);
        var reader = provider.GetMetadataReader();
        // SourceLink maps /_/ to the repository root at the packed commit, so the documents must be
        // repository-relative (src/Skiff.Sdk/…), not project-relative.
        var documents = reader.Documents.Select(d => reader.GetString(reader.GetDocument(d).Name)).ToList();
        documents.ShouldContain("/_/src/Skiff.Sdk/SkiffApp.cs");
        documents.ShouldAllBe(d => d.StartsWith("/_/", StringComparison.Ordinal));
    }
}
