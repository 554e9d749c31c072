using System.CommandLine;
using System.Text.Json.Nodes;
using Skiff.Build.Releases;

namespace Skiff.Cli.Commands;

/// <summary>
/// <c>skiff check [PATH]</c>: restores every environment variant the project declares and checks that they agree on
/// the version of every package they share (docs/build.md, "Variants"). Builds nothing; exits non-zero on a conflict.
/// A CI step before the deploy, and the full form of the check every build makes against the variants' lock files.
/// </summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "The project folder or project file.", DefaultValueFactory = _ => "." };
        var rid = new Option<string?>("--rid") { Description = "The runtime identifier to resolve packages for (default: this machine's)." };
        var locked = LockOptions.Locked();
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("check", "Restore every variant of a project (<SkiffVariants>) and check that every package two variants share resolves to one version.")
        {
            path, rid, locked, json,
        };
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            var request = new BuildRequest(parse.GetValue(path)!) { RequireLockFile = parse.GetValue(locked) };
            if (parse.GetValue(rid) is { Length: > 0 } chosen)
            {
                request = request with { Rid = chosen };
            }

            IReadOnlyList<Skiff.Build.Restore.ResolvedClosure> closures;
            try
            {
                closures = await ReleaseBuilder.CheckVariantsAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (Skiff.Build.Restore.VariantConflictException conflict) when (parse.GetValue(json))
            {
                // A CI step reading --json gets the verdict on stdout too, one line per conflicting package; the error and
                // exit code stay as without --json.
                Console.WriteLine(new JsonObject
                {
                    ["compatible"] = false,
                    ["conflicts"] = new JsonArray([.. conflict.Conflicts.Select(c => (JsonNode)JsonValue.Create(c))]),
                }.ToJsonString(QueryCommands.Indented));
                throw;
            }

            if (parse.GetValue(json))
            {
                var variants = new JsonArray();
                foreach (var closure in closures)
                {
                    variants.Add(new JsonObject
                    {
                        ["variant"] = closure.Variant.Name,
                        ["locked"] = closure.Locked,
                        ["packages"] = closure.Packages.Count,
                        ["build_only"] = new JsonArray([.. closure.DevelopmentOnly.Select(p => (JsonNode)JsonValue.Create($"{p.Id}/{p.Version}"))]),
                    });
                }

                Console.WriteLine(new JsonObject { ["compatible"] = true, ["variants"] = variants }.ToJsonString(QueryCommands.Indented));
                return 0;
            }

            foreach (var closure in closures)
            {
                Console.WriteLine(
                    $"{closure.Variant.Name}: {closure.Packages.Count} packages{(closure.Locked ? ", locked" : "")}"
                    + (closure.DevelopmentOnly.Count > 0 ? $"; build-only, never deployed: {string.Join(", ", closure.DevelopmentOnly.Select(p => p.Id))}" : ""));
            }

            Console.WriteLine(closures.Count == 1
                ? "one variant: nothing to compare"
                : $"the {closures.Count} variants agree on every package they share");
            return 0;
        }));
        return command;
    }
}
