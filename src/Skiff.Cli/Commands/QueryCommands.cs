using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Skiff.Client.Api;

namespace Skiff.Cli.Commands;

/// <summary>Commands that ask the server about locations, jobs, deployments and runs, and the few that change them.</summary>
internal static class QueryCommands
{
    /// <summary>
    /// How every <c>--json</c> answer is printed: indented, and with text as it is (<c>+</c>, <c>&lt;</c>, accents), not
    /// escaped for embedding in HTML, which a terminal or <c>jq</c> does not need and a person copying a value would trip on.
    /// </summary>
    internal static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IEnumerable<Command> Create()
    {
        yield return Locations();
        yield return Agents();
        yield return Jobs();
        yield return History();
        yield return Health();
        yield return Runs();
        yield return Rollback();
        yield return Gc();
        yield return Scrub();
    }

    private static Command Locations()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("locations", "List locations with their live release, health and run limit. `skiff locations set LOCATION --max-concurrent N|--no-exp|--exp|--runs isolated|shared` changes a location's settings.")
        {
            json,
            SetLocation(),
        };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var locations = Node(await api.ListLocationsAsync(cancellationToken).ConfigureAwait(false), ApiJson.Default.IReadOnlyListLocationSummary).AsArray();
            if (parse.GetValue(json))
            {
                Console.WriteLine(locations.ToJsonString(Indented));
                return 0;
            }

            Console.Write(Table(
                ["LOCATION", "RELEASE", "VARIANT", "EXP", "HEALTH", "JOBS", "TASKS", "MAX RUNS", "RUNS", "REPLICAS", "AGENTS", "DEPLOYMENT"],
                [.. locations.OfType<JsonObject>().Select(l => new[]
                {
                    (string?)l["location"] ?? "", Short((string?)l["release"]), (string?)l["variant"] ?? "-",
                    // EXP: the live release carries experimental packages; "no" when the location refuses them and "-" otherwise.
                    Exp(l) is "EXP" ? "EXP" : (bool?)l["refuses_experimental"] == true ? "no" : "-",
                    (string?)l["health"] ?? "", ((int?)l["jobs"] ?? 0).ToString(CultureInfo.InvariantCulture),
                    // A location serving tasks is a pool; "-" keeps the others quiet.
                    (int?)l["tasks"] is > 0 and var tasks ? tasks.ToString(CultureInfo.InvariantCulture) : "-",
                    (int?)l["max_concurrent"] is { } max ? max.ToString(CultureInfo.InvariantCulture) : "-",
                    (string?)l["runs"] ?? "isolated",
                    // A pool that scales: on how many agents it is now, of its range ("1 of 0..8").
                    (int?)l["min_replicas"] is { } fewest
                        ? $"{(l["agents"] as JsonArray)?.Count ?? 0} of {fewest}..{(int?)l["replicas"]}"
                        : ((int?)l["replicas"] ?? 1).ToString(CultureInfo.InvariantCulture),
                    Names(l["agents"]) + ((string?)l["on"] is { } on ? $" (on {on})" : ""), (string?)l["deployment"] ?? "-",
                })]));

            // What the agents last said, under the table: health alone hides a repaired folder or a run out of memory.
            foreach (var location in locations.OfType<JsonObject>().Where(l => (string?)l["last_report"]?["kind"] is { } kind && kind != "activated"))
            {
                Console.WriteLine(LastReportLine(location));
            }

            return 0;
        }));
        return command;
    }

    /// <summary>
    /// <c>skiff locations set LOCATION --max-concurrent N|none</c>: a location's settings, kept across deploys. Each
    /// setting is an option; only those given change.
    /// </summary>
    private static Command SetLocation()
    {
        var location = new Argument<string>("location") { Description = "The location." };
        var maxConcurrent = new Option<string?>("--max-concurrent")
        {
            Description = "The most runs the location runs at once, 1 or more; runs over it wait queued and start in order as runs end. `none` removes the limit.",
            HelpName = "N|none",
        };
        var allowExperimental = new Option<bool>("--exp") { Description = "Take releases with experimental packages (`skiff deploy --exp`) again." };
        var refuseExperimental = new Option<bool>("--no-exp")
        {
            Description = "Refuse releases with experimental packages: such a deploy (or rollback) to the location fails and changes nothing. CI's main locations, typically.",
        };
        var runs = new Option<string?>("--runs")
        {
            Description = "Where the location's runs execute, from its next run on: isolated, a process per run (a crash hurts one run), or shared, all runs of a release as async state machines in one shared run host (starts fast, costs little while waiting; a crash of the host fails all its runs). docs/agent.md, \"Shared run host\".",
            HelpName = "isolated|shared",
        };
        runs.AcceptOnlyFromAmong("isolated", "shared");
        var json = new Option<bool>("--json") { Description = "Print JSON, as PATCH /api/v1/locations/{name} answers." };
        var client = new ClientOptions();
        var command = new Command("set", "Change a location's settings; they are kept across deploys and recorded in the audit log.") { location, maxConcurrent, allowExperimental, refuseExperimental, runs, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            // Checked before the server is looked for, so a typo is answered as one.
            var settings = new JsonObject();
            if (parse.GetValue(maxConcurrent) is { } given)
            {
                settings["max_concurrent"] = given.Trim() switch
                {
                    "none" => null,
                    var text when int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 => n,
                    _ => throw new Skiff.Client.ClientException($"--max-concurrent takes a whole number of 1 or more, or `none` to remove the limit; not '{given}'. Nothing was changed.", usage: true),
                };
            }

            switch (parse.GetValue(allowExperimental), parse.GetValue(refuseExperimental))
            {
                case (true, true):
                    throw new Skiff.Client.ClientException("--exp and --no-exp contradict each other; give one. Nothing was changed.", usage: true);
                case (true, false):
                    settings["experimental"] = true;
                    break;
                case (false, true):
                    settings["experimental"] = false;
                    break;
            }

            if (parse.GetValue(runs) is { } hosting)
            {
                settings["runs"] = hosting;
            }

            if (settings.Count == 0)
            {
                throw new Skiff.Client.ClientException("give a setting to change, such as --max-concurrent 2 (or --max-concurrent none), --no-exp / --exp, or --runs shared. Nothing was changed.", usage: true);
            }

            using var api = client.Connect(parse);
            var changed = await api.SetLocationAsync(parse.GetValue(location)!, settings, cancellationToken).ConfigureAwait(false);
            Console.WriteLine(parse.GetValue(json)
                ? Node(changed, ApiJson.Default.LocationSettings).ToJsonString(Indented)
                : $"{changed.Location}: max concurrent runs {(changed.MaxConcurrent is { } max ? max.ToString(CultureInfo.InvariantCulture) : "none (no limit)")}; experimental releases {(changed.RefusesExperimental ? "refused" : "allowed")}; runs {changed.Runs}");
            if (!parse.GetValue(json) && changed.RefusesExperimental && changed.LiveExperimental is { } live)
            {
                Console.WriteLine($"note: the live release carries {live}; it stays live (environment changes re-activate it) until the next deploy, which must be a release without experimental packages.");
            }

            return 0;
        }));
        return command;
    }

    private static Command Agents()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("agents", "List the agents with their state, labels, load, locations and cached environments.") { json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var agents = await api.ListAgentsAsync(cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(agents.ToJsonString(Indented));
                return 0;
            }

            Console.Write(Table(
                ["AGENT", "STATE", "ISOLATION", "LABELS", "LOAD", "RUNS", "TASKS", "LOCATIONS", "ENVIRONMENTS"],
                [.. agents.OfType<JsonObject>().Select(a => new[]
                {
                    (string?)a["name"] ?? "",
                    (string?)a["state"] ?? "",
                    Isolation(a["capacity"]?["isolation"]),
                    a["labels"] is JsonObject labels && labels.Count > 0 ? string.Join(",", labels.Select(l => $"{l.Key}={(string?)l.Value}")) : "-",
                    Load(a["capacity"], a["load"]),
                    ((int?)a["runs"] ?? 0).ToString(CultureInfo.InvariantCulture),
                    ((int?)a["tasks"] ?? 0).ToString(CultureInfo.InvariantCulture),
                    Names(a["locations"]),
                    (a["load"]?["environments"] as JsonArray ?? []).Count.ToString(CultureInfo.InvariantCulture) + " live, " + ((int?)a["load"]?["cached_folders"] ?? 0).ToString(CultureInfo.InvariantCulture) + " folders cached",
                })]));
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// "sandbox, cgroups" when every location runs in its own sandbox bounded by cgroups; "NONE" says loudly that an
    /// agent runs every location as its own user (<c>--no-sandbox</c>). "-" for an agent too old to say.
    /// </summary>
    private static string Isolation(JsonNode? isolation) => isolation is null
        ? "-"
        : ((bool?)isolation["sandboxed"] == true ? "sandbox" : "NONE") + ", " + ((bool?)isolation["cgroups"] == true ? "cgroups" : "heap limit only");

    /// <summary>"3.1/16.0 GiB, load 0.42 on 8 CPUs": memory in use of the host's, and its load average.</summary>
    private static string Load(JsonNode? capacity, JsonNode? load)
    {
        const double GiB = 1024.0 * 1024 * 1024;
        var parts = new List<string>();
        if ((long?)load?["memory_used_bytes"] is { } used && (long?)capacity?["memory_bytes"] is { } total)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{used / GiB:0.0}/{total / GiB:0.0} GiB"));
        }

        if ((double?)load?["cpu_load"] is { } cpu)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"load {cpu:0.00} on {(int?)capacity?["cpus"] ?? 0} CPUs"));
        }

        return parts.Count == 0 ? "-" : string.Join(", ", parts);
    }

    /// <summary>"EXP" for a deployment or location whose release carries experimental packages (`skiff deploy --exp`), else "-".</summary>
    private static string Exp(JsonObject item) => (bool?)item["experimental"] == true ? "EXP" : "-";

    private static string Names(JsonNode? list) =>
        list is JsonArray { Count: > 0 } names ? string.Join(",", names.Select(n => (string?)n)) : "-";

    private static Command Jobs()
    {
        var location = new Argument<string>("location") { Description = "The location." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("jobs", "List the jobs the live version of a location defines, and the tasks it serves as a pool.") { location, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var answer = Node(await api.GetJobsAsync(parse.GetValue(location)!, cancellationToken).ConfigureAwait(false), ApiJson.Default.LocationJobs);
            if (parse.GetValue(json))
            {
                Console.WriteLine(answer.ToJsonString(Indented));
                return 0;
            }

            Console.WriteLine($"{parse.GetValue(location)} runs release {Short((string?)answer["release"])}");
            // The same lines as the job project's own `dotnet run -- list`, so the platform and a local run read alike.
            foreach (var job in (answer["jobs"] as JsonArray ?? []).OfType<JsonObject>())
            {
                Console.WriteLine((string?)job["description"] is { } description ? $"  {(string?)job["name"],-24} {description}" : $"  {(string?)job["name"]}");
                foreach (var parameter in (job["parameters"] as JsonArray ?? []).OfType<JsonObject>())
                {
                    var shown = (bool?)parameter["required"] == true ? "required" : $"default {parameter["default"]?.ToJsonString() ?? "null"}";
                    var said = (string?)parameter["description"] is { } text ? $"  {text}" : "";
                    Console.WriteLine($"      --param {(string?)parameter["name"]}=<{(string?)parameter["type"]}>  ({shown}){said}");
                }

                var ops = (job["ops"] as JsonArray ?? []).OfType<JsonObject>().ToList();
                if (ops.Count > 1)
                {
                    Console.WriteLine($"      ops: {string.Join(", ", ops.Select(Op))}");
                }
            }

            // A pool's tasks below its jobs, as `dotnet run -- list` prints them (with the types' full names: callers
            // in other projects match the JSON, and the schemas are in --json).
            foreach (var task in (answer["tasks"] as JsonArray ?? []).OfType<JsonObject>())
            {
                var retry = (int?)task["retry"]?["max_attempts"] is > 1 and var attempts ? $", up to {attempts} attempts" : "";
                var said = (string?)task["description"] is { } description ? $"  {description}" : "";
                Console.WriteLine($"  task {(string?)task["name"],-19} ({(string?)task["input_type"]} -> {(string?)task["output_type"]}{retry}){said}");
            }

            return 0;
        }));
        return command;
    }

    private static Command History()
    {
        var location = new Argument<string>("location") { Description = "The location." };
        var limit = new Option<int>("--limit") { Description = "How many deployments, newest first.", DefaultValueFactory = _ => 20 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var timeline = new Option<bool>("--timeline") { Description = "Show the deployments' stage timings side by side, oldest first." };
        var client = new ClientOptions();
        var command = new Command("history", "List a location's deployments, newest first, with their path, outcome and timings.") { location, limit, json, timeline };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var history = Node(await api.ListDeploymentsAsync(parse.GetValue(location)!, parse.GetValue(limit), cancellationToken).ConfigureAwait(false), ApiJson.Default.IReadOnlyListDeployment).AsArray();
            if (parse.GetValue(json))
            {
                Console.WriteLine(history.ToJsonString(Indented));
                return 0;
            }

            if (parse.GetValue(timeline))
            {
                PrintTimeline([.. history.OfType<JsonObject>().Reverse()]);
                return 0;
            }

            Console.WriteLine($"{"DEPLOYMENT",-24} {"RELEASE",-13} {"VARIANT",-10} {"EXP",-3} {"COMMIT",-18} {"PATH",-9} {"STATE",-10} {"UPLOADED",10} {"TOTAL",8}  WHEN");
            foreach (var d in history.OfType<JsonObject>())
            {
                Console.WriteLine($"{(string?)d["deployment"],-24} {Short((string?)d["release"]),-13} {(string?)d["variant"] ?? "-",-10} {Exp(d),-3} {Commit(d),-18} {(string?)d["path"],-9} {State(d),-10} {Bytes((long?)d["uploaded"]?["bytes"] ?? 0),10} {(long?)d["timings_ms"]?["total"],6} ms  {When((string?)d["created_at"])}");
                if ((string?)d["env_change"] is { } change)
                {
                    Console.WriteLine($"    env: {change} (by {(string?)d["who"]})");
                }

                if (d["experimental_packages"] is JsonArray { Count: > 0 } packages)
                {
                    Console.WriteLine($"    experimental: {string.Join(" ", packages.Select(p => (string?)p))}");
                }

                if ((string?)d["error"] is { } error)
                {
                    Console.WriteLine($"    {error.Split('\n')[0]}");
                }
            }

            return 0;
        }));
        return command;
    }

    /// <summary><c>skiff health LOCATION</c>: the location's health history, beside <c>skiff history</c>'s deployments.</summary>
    private static Command Health()
    {
        var location = new Argument<string>("location") { Description = "The location." };
        var limit = new Option<int>("--limit") { Description = "How many reports, newest first (at most 200 are kept).", DefaultValueFactory = _ => 20 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("health", "List what agents reported about a location, newest first: crashes, restarts, out of memory, health changes, activations.") { location, limit, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var reports = Node(await api.ListHealthAsync(parse.GetValue(location)!, parse.GetValue(limit), cancellationToken).ConfigureAwait(false), ApiJson.Default.IReadOnlyListHealthReport).AsArray();
            if (parse.GetValue(json))
            {
                Console.WriteLine(reports.ToJsonString(Indented));
                return 0;
            }

            Console.Write(Table(
                ["WHEN", "KIND", "AGENT", "RELEASE", "MESSAGE"],
                [.. reports.OfType<JsonObject>().Select(r => new[]
                {
                    When((string?)r["at"]), (string?)r["kind"] ?? "", (string?)r["agent"] ?? "", Short((string?)r["release"]), ((string?)r["message"] ?? "").Split('\n')[0],
                })]));
            return 0;
        }));
        return command;
    }

    private static Command Runs()
    {
        var location = new Argument<string?>("location") { Description = "Only runs of this location.", Arity = ArgumentArity.ZeroOrOne };
        var limit = new Option<int>("--limit") { Description = "How many runs, newest first.", DefaultValueFactory = _ => 20 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("runs", "List runs, newest first, with how long each waited in the run queue (docs/run-queue.md).") { location, limit, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var runs = Node(await api.ListRunsAsync(parse.GetValue(location), parse.GetValue(limit), cancellationToken).ConfigureAwait(false), ApiJson.Default.IReadOnlyListRun).AsArray();
            if (parse.GetValue(json))
            {
                Console.WriteLine(runs.ToJsonString(Indented));
                return 0;
            }

            Console.Write(Table(
                ["RUN", "LOCATION", "JOB", "STATUS", "RELEASE", "STARTED", "QUEUE WAIT"],
                [.. runs.OfType<JsonObject>().Select(r => new[]
                {
                    (string?)r["run"] ?? "", (string?)r["location"] ?? "", (string?)r["job"] ?? "", (string?)r["status"] ?? "", Short((string?)r["release"]),
                    (string?)r["status"] == "queued" ? "-" : When((string?)r["started_at"]), QueueWait(r),
                })]));

            return 0;
        }));
        return command;
    }

    private static Command Rollback()
    {
        var location = new Argument<string>("location") { Description = "The location." };
        var deployment = new Argument<string?>("deployment") { Description = "The deployment whose release to put back; left out, the release live before the current one.", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print the new deployment as one JSON object." };
        var client = new ClientOptions();
        var command = new Command("rollback", "Make an earlier release live again, exactly; nothing is built or uploaded.") { location, deployment, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var result = Node(
                await api.RollbackAsync(parse.GetValue(location)!, parse.GetValue(deployment), $"{Environment.UserName}@{Environment.MachineName}", cancellationToken).ConfigureAwait(false),
                ApiJson.Default.Deployment);
            if (parse.GetValue(json))
            {
                Console.WriteLine(result.ToJsonString(Indented));
                return (string?)result["outcome"] == "live" ? 0 : CommandRunner.Failed;
            }

            if ((string?)result["outcome"] != "live")
            {
                await Console.Error.WriteLineAsync($"error: rollback {(string?)result["deployment"]} failed; the current version is still live.\n{(string?)result["error"]}").ConfigureAwait(false);
                return CommandRunner.Failed;
            }

            Console.WriteLine($"deployment {(string?)result["deployment"]}: {Short((string?)result["release"])} live on {parse.GetValue(location)} again (rollback of {(string?)result["rollback_of"]}, 0 bytes uploaded)");
            return 0;
        }));
        return command;
    }

    private static Command Gc()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON: {\"deleted\", \"deleted_bytes\", \"kept_releases\"}." };
        var client = new ClientOptions();
        var command = new Command("gc", "Delete blobs on the server that no live or recent release uses.") { json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var result = Node(await api.CollectGarbageAsync(cancellationToken).ConfigureAwait(false), ApiJson.Default.GarbageCollection);
            if (parse.GetValue(json))
            {
                Console.WriteLine(result.ToJsonString(Indented));
                return 0;
            }

            Console.WriteLine($"deleted {(int?)result["deleted"]} blob(s), {Bytes((long?)result["deleted_bytes"] ?? 0)}; kept everything {(int?)result["kept_releases"]} release(s) use");
            return 0;
        }));
        return command;
    }

    private static Command Scrub()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON, as GET /api/v1/blobs/scrub answers." };
        var client = new ClientOptions();
        var command = new Command("scrub", "Show the background scrub of the server's blob store: its rate, its last pass, and every quarantined (damaged) blob with the releases and locations it affects (docs/integrity.md).") { json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var report = await api.ScrubReportAsync(cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(Node(report, ApiJson.Default.ScrubReport).ToJsonString(Indented));
                return 0;
            }

            Console.WriteLine(report.BytesPerSecond == 0 ? "scrub: off (skiff server --scrub-rate 0)" : $"scrub: {Bytes(report.BytesPerSecond)}/s");
            Console.WriteLine(report.LastPass switch
            {
                null => "last pass: none yet (the first starts 5 minutes after the server)",
                var pass => $"last pass: started {pass.Started:u}, {(pass.Finished is { } finished ? $"finished {finished:u}" : "under way")}, {pass.Blobs} blob(s), {Bytes(pass.Bytes)} hashed, {pass.Quarantined.Count} quarantined{(pass.Error is { } error ? $"; stopped: {error}" : "")}",
            });
            if (report.Quarantined.Count == 0)
            {
                Console.WriteLine("quarantine: empty");
                return 0;
            }

            Console.Write(Table(
                ["QUARANTINED", "STATE", "RELEASES", "LIVE ON"],
                [.. report.Quarantined.Select(q => new[]
                {
                    Short(q.Digest), q.Restored ? "stored again" : "MISSING", q.Releases.Count == 0 ? "-" : string.Join(",", q.Releases.Select(Short)), q.Locations.Count == 0 ? "-" : string.Join(",", q.Locations),
                })]));
            if (report.Quarantined.Any(q => !q.Restored && q.Locations.Count > 0))
            {
                Console.WriteLine("Deploy those locations' projects again: the client uploads what the server lacks, and they recover.");
            }

            return 0;
        }));
        return command;
    }

    /// <summary>One column per deployment, one row per stage: where each deploy's time went, side by side.</summary>
    private static void PrintTimeline(IReadOnlyList<JsonObject> deployments)
    {
        const int width = 16;
        string Row(string label, Func<JsonObject, string> cell) =>
            $"{label,-10}" + string.Concat(deployments.Select(d => cell(d).PadLeft(width)));
        Console.WriteLine(Row("", d => (string?)d["deployment"] is { Length: > 14 } id ? id[..14] : (string?)d["deployment"] ?? ""));
        Console.WriteLine(Row("path", d => (string?)d["path"] ?? ""));
        Console.WriteLine(Row("outcome", d => (string?)d["outcome"] ?? ""));
        Console.WriteLine(Row("uploaded", d => Bytes((long?)d["uploaded"]?["bytes"] ?? 0)));
        foreach (var stage in (string[])["restore", "build", "pack", "upload", "activate", "total"])
        {
            Console.WriteLine(Row(stage, d => d["timings_ms"]?[stage] is { } ms ? $"{(long)ms} ms" : "-"));
        }
    }

    /// <summary>The deployment's commit, short as git shows it, with <c>-dirty</c> as <c>git describe --dirty</c> marks a changed work tree.</summary>
    private static string Commit(JsonObject deployment) =>
        (string?)deployment["commit"] is { Length: >= 12 } commit
            ? commit[..12] + ((bool?)deployment["dirty"] == true ? "-dirty" : "")
            : "-";

    /// <summary>
    /// Columns as wide as their widest cell, so no value (a long location name, a health like "restarting")
    /// pushes the rest of its row out of line.
    /// </summary>
    internal static string Table(string[] headers, IReadOnlyList<string[]> rows)
    {
        var widths = headers.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        string Row(string[] cells) => string.Join("  ", cells.Select((c, i) => i == cells.Length - 1 ? c : c.PadRight(widths[i])));
        return string.Concat(rows.Prepend(headers).Select(r => Row(r) + Environment.NewLine));
    }

    /// <summary>"load &lt;- clean+score": an op and the ops it waits for.</summary>
    private static string Op(JsonObject op) =>
        (op["depends_on"] as JsonArray ?? []) is { Count: > 0 } after
            ? $"{(string?)op["name"]} <- {string.Join("+", after.Select(d => (string?)d))}"
            : (string?)op["name"] ?? "";

    /// <summary>"live" for the deployment serving now; one that was live before it is "superseded".</summary>
    private static string State(JsonObject deployment) => (string?)deployment["outcome"] switch
    {
        "live" when (bool?)deployment["live"] == false => "superseded",
        var outcome => outcome ?? "",
    };

    /// <summary>An answer as the JSON the server sent, for <c>--json</c> and the tables below.</summary>
    internal static JsonNode Node<T>(T value, JsonTypeInfo<T> type) => JsonSerializer.SerializeToNode(value, type)!;

    internal static string Short(string? digest) => digest is { Length: > 19 } ? digest[7..19] : digest ?? "-";

    private static string Bytes(long bytes) => Skiff.Build.Releases.Format.Bytes(bytes);

    /// <summary>How long a run waited in the run queue; for one still waiting, how long so far; "-" for a run that never queued.</summary>
    internal static string QueueWait(JsonObject run)
    {
        if ((long?)run["queue_wait_ms"] is { } ms)
        {
            return Duration(TimeSpan.FromMilliseconds(ms));
        }

        return (string?)run["status"] == "queued" && DateTimeOffset.TryParse((string?)run["queued_at"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var queuedAt)
            ? $"waiting {Duration(DateTimeOffset.UtcNow - queuedAt)}"
            : "-";
    }

    private static string Duration(TimeSpan span) =>
        span < TimeSpan.Zero ? "0s"
        : span < TimeSpan.FromMinutes(1) ? span.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s"
        : span < TimeSpan.FromHours(1) ? $"{(int)span.TotalMinutes}m{span.Seconds:00}s"
        : $"{(int)span.TotalHours}h{span.Minutes:00}m";

    /// <summary>
    /// A location's last report under the `skiff locations` table. It names the release it is about: a pool's replaced
    /// release reports `draining` and `stopped` while the live one serves, which without it read as the pool stopping.
    /// </summary>
    internal static string LastReportLine(JsonObject location)
    {
        var report = location["last_report"]!;
        var release = (string?)report["release"] is { } digest ? $", release {Short(digest)}" : "";
        return $"{(string?)location["location"]}: {(string?)report["kind"]} at {When((string?)report["at"])}{release}: {(string?)report["message"]}";
    }

    private static string When(string? timestamp) =>
        DateTimeOffset.TryParse(timestamp, CultureInfo.InvariantCulture, DateTimeStyles.None, out var at)
            ? at.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)
            : "";
}
