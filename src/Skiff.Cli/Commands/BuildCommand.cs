using System.CommandLine;
using System.Text.Json;
using Skiff.Build.Releases;
using Skiff.Build.Sources;
using Skiff.Core.Blobs;

namespace Skiff.Cli.Commands;

/// <summary><c>skiff build [PATH] [--rid RID] [--store DIR] [--json]</c></summary>
internal static class BuildCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path")
        {
            Description = "The project folder or project file.",
            DefaultValueFactory = _ => ".",
        };
        var rid = new Option<string?>("--rid") { Description = "The runtime identifier to resolve packages for (default: this machine's)." };
        var store = CommonOptions.Store();
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of progress lines." };
        var restore = new Option<bool>("--restore") { Description = "Restore even when the restore output looks current." };
        var locked = LockOptions.Locked();
        var variant = CommonOptions.Variant();

        var command = new Command("build", "Build a project into content-addressed environment and source blobs in the store.")
        {
            path, rid, store, json, restore, locked, variant,
        };
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            var request = new BuildRequest(parse.GetValue(path)!) { ForceRestore = parse.GetValue(restore), RequireLockFile = parse.GetValue(locked), Variant = parse.GetValue(variant) };
            if (parse.GetValue(rid) is { Length: > 0 } chosen)
            {
                request = request with { Rid = chosen };
            }

            var asJson = parse.GetValue(json);
            var builder = new ReleaseBuilder(new FileBlobStore(parse.GetValue(store)!));
            using var status = new StatusLine();
            if (!asJson)
            {
                status.Show("restoring");
            }

            var result = await builder.BuildAsync(request, asJson ? StatusLine.WaitsOnly : status.BuildStage, cancellationToken).ConfigureAwait(false);
            LockOptions.NoticeIfUnlocked(result, request.Path);
            if (asJson)
            {
                WriteJson(result);
            }
            else
            {
                status.Line($"release {result.Release}{(result.Environment.Variant == Core.Manifests.EnvironmentManifest.DefaultVariant ? "" : $", variant {result.Environment.Variant}")}  ({Format.Milliseconds(result.Timings.Total)} in all)");
            }

            return 0;
        }));
        return command;
    }

    private static void WriteJson(BuildResult result)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var writer = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("release", result.Release.ToString());
            writer.WriteString("framework", result.Environment.Framework);
            writer.WriteString("rid", result.Environment.Rid);
            writer.WriteString("variant", result.Environment.Variant);
            writer.WriteString("compile", result.Compile switch
            {
                CompileRoute.CompilerOnly => "compiler",
                CompileRoute.UpToDate => "up_to_date",
                _ => "msbuild",
            });
            writer.WriteStartObject("environment");
            writer.WriteString("digest", result.EnvironmentDigest.ToString());
            writer.WriteBoolean("locked", result.Environment.Locked);
            writer.WriteNumber("bytes", result.EnvironmentBytes);
            writer.WriteStartArray("packages");
            foreach (var (package, bytes) in result.Packages)
            {
                writer.WriteStartObject();
                writer.WriteString("id", package.Id);
                writer.WriteString("version", package.Version);
                writer.WriteString("digest", package.Blob.ToString());
                writer.WriteNumber("bytes", bytes);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
            writer.WriteStartObject("source");
            writer.WriteString("digest", result.Source.ToString());
            writer.WriteNumber("bytes", result.SourceBytes);
            writer.WriteEndObject();
            writer.WriteStartObject("timings_ms");
            writer.WriteNumber("restore", Milliseconds(result.Timings.Restore));
            writer.WriteNumber("environment", Milliseconds(result.Timings.Environment));
            writer.WriteNumber("build", Milliseconds(result.Timings.Build));
            writer.WriteNumber("pack", Milliseconds(result.Timings.Pack));
            writer.WriteNumber("total", Milliseconds(result.Timings.Total));
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        stdout.WriteByte((byte)'\n');
    }

    private static long Milliseconds(TimeSpan elapsed) => (long)Math.Round(elapsed.TotalMilliseconds);
}
