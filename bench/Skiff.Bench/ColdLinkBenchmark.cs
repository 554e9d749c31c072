using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Skiff.Testing;

namespace Skiff.Bench;

/// <summary>
/// Cold <c>skiff deploy</c> of samples/Heavy across shaped links (bench/network/link.sh: skiffb-cli ── skiffb-srv ──
/// skiffb-agt), side by side in one run: scale-out (PostgreSQL + s3rver + <c>skiff server</c> in skiffb-srv, agents
/// fetch from S3 by pre-signed URL) against embedded (<c>skiff server</c> with SQLite and a blob folder in skiffb-srv,
/// agents fetch through it). Each deploy starts from nothing on the platform side: a new database and bucket, or a
/// new data folder, and an empty agent cache; the CLI's build cache stays, as on a developer's machine, and a
/// one-line change makes each deploy build. The bytes each link carried in each direction come from the veth ends'
/// <c>/sys/class/net/DEV/statistics</c> counters, read before and after the deploy; skiffb-srv's loopback counts
/// what went between the server and its stores inside skiffb-srv.
/// Run by bench/cold-deploy-100mbit.sh, which brings the links up and down.
/// </summary>
internal static class ColdLinkBenchmark
{
    private const string Cli = "skiffb-cli";
    private const string Srv = "skiffb-srv";
    private const string Agt = "skiffb-agt";

    // skiffb-srv's address on the CLI's link; link.sh routes the agent to it too, so one S3 endpoint serves both.
    private const string Address = "10.77.1.1";
    private static readonly string Skiff = Path.Combine(AppContext.BaseDirectory, "skiff.dll");
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(5);
    private static readonly Dictionary<string, string> S3Credentials = new() { ["AWS_ACCESS_KEY_ID"] = "S3RVER", ["AWS_SECRET_ACCESS_KEY"] = "S3RVER" };

    // No build servers: they would outlive the run, and `dotnet build-server shutdown` would stop other users' too.
    // Each deploy then compiles without a warm compiler, alike on both platforms.
    private static readonly Dictionary<string, string> NoBuildServers = new()
    {
        ["SKIFF_BUILD_SERVERS"] = "0",
        ["MSBUILDDISABLENODEREUSE"] = "1",
        ["UseSharedCompilation"] = "false",
        ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0",
    };

    public static async Task<int> RunAsync(int iterations)
    {
        if (!File.Exists($"/run/netns/{Srv}"))
        {
            await Console.Error.WriteLineAsync($"network namespace {Srv} does not exist: run bench/cold-deploy-100mbit.sh, which brings the links up (bench/network/link.sh up 100mbit) and down.");
            return 2;
        }

        using var workspace = new Workspace();
        var root = workspace.Root;
        var repository = Workspace.RepositoryRoot;
        var postgresFolder = Directory.CreateTempSubdirectory("skiff-bench-pg-").FullName;
        var s3Environment = new Dictionary<string, string> { ["S3RVER_STATE"] = Path.Combine(root, "s3rver"), ["S3RVER_ADDRESS"] = Address };
        var home = Path.Combine(root, "cli-home");
        try
        {
            var project = await PrepareProjectAsync(workspace, home);
            await RunAsync(null, "bash", [Path.Combine(repository, "scripts", "s3rver.sh"), "install"], null);
            var postgres = (await RunAsync(Srv, "bash", [Path.Combine(repository, "scripts", "postgres.sh"), "start", postgresFolder], null)).Trim();
            var endpoint = (await RunAsync(Srv, "bash", [Path.Combine(repository, "scripts", "s3rver.sh"), "start"], s3Environment)).Trim();
            Console.Error.WriteLine($"postgres {postgres} and s3rver {endpoint} in {Srv}");

            var series = new Dictionary<string, List<double>>();
            for (var i = 0; i < iterations; i++)
            {
                foreach (var platform in (string[])["scale-out", "embedded"])
                {
                    string[] server = platform == "scale-out"
                        ? ["--metadata", await NewDatabaseAsync(postgres, postgresFolder, i), "--blobs", $"s3://{await NewBucketAsync(endpoint, i)}/platform?endpoint={endpoint}"]
                        : [];
                    await File.AppendAllTextAsync(Path.Combine(project, "Program.cs"), $"\n// cold {platform} {i}\n");
                    var measured = await DeployColdAsync(project, home, Path.Combine(root, $"{platform}-{i}"), server);
                    Console.Error.WriteLine($"{platform} {i + 1}/{iterations}: {measured.Wall:0} ms (build {measured.Stages["build"]:0}, upload {measured.Stages["upload"]:0}, activate {measured.Stages["activate"]:0}), uploaded {measured.Uploaded:N0} B, cli->srv {measured.Links["cli->srv"]:N0} B, srv->agt {measured.Links["srv->agt"]:N0} B");
                    Stats.Add(series, $"{platform}: wall ms", measured.Wall);
                    Stats.Add(series, $"{platform}: uploaded B", measured.Uploaded);
                    Stats.Add(series, $"{platform}: agent cache B", measured.AgentCache);
                    foreach (var (link, bytes) in measured.Links)
                    {
                        Stats.Add(series, $"{platform}: {link} B", bytes);
                    }

                    foreach (var (stage, ms) in measured.Stages)
                    {
                        Stats.Add(series, $"{platform}: {stage} ms", ms);
                    }
                }
            }

            Report(series, iterations);
            return 0;
        }
        finally
        {
            await TryAsync(() => RunAsync(Srv, "bash", [Path.Combine(repository, "scripts", "s3rver.sh"), "stop"], s3Environment));
            await TryAsync(() => RunAsync(Srv, "bash", [Path.Combine(repository, "scripts", "postgres.sh"), "stop", postgresFolder], null));
            Directory.Delete(postgresFolder, recursive: true);
        }
    }

    private sealed record Measured(double Wall, double Uploaded, double AgentCache, Dictionary<string, double> Links, Dictionary<string, double> Stages);

    /// <summary>A copy of samples/Heavy, restored and built once here (the namespaces have no route to a package feed), then restoring from this machine's package folder only.</summary>
    private static async Task<string> PrepareProjectAsync(Workspace workspace, string home)
    {
        var project = workspace.CopySample("Heavy", "repo");
        await RunAsync(null, "dotnet", [Skiff, "build", project], new Dictionary<string, string>(NoBuildServers) { ["SKIFF_HOME"] = home });
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        await File.WriteAllTextAsync(workspace.PathTo("repo", "NuGet.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{packages}" />
              </packageSources>
            </configuration>
            """);
        return project;
    }

    private static async Task<string> NewDatabaseAsync(string postgres, string folder, int i)
    {
        var port = new Uri(postgres).Port.ToString(CultureInfo.InvariantCulture);
        var name = $"cold_{i}";
        await RunAsync(Srv, "runuser", ["-u", "postgres", "--", "/usr/lib/postgresql/15/bin/psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "postgres", "-qc", $"CREATE DATABASE {name}"], null, folder);
        return $"postgres://postgres@127.0.0.1:{port}/{name}";
    }

    /// <summary>s3rver takes an unsigned request; only skiffb-srv reaches its address without crossing a link.</summary>
    private static async Task<string> NewBucketAsync(string endpoint, int i)
    {
        var name = $"cold-{i}-{Guid.NewGuid():N}"[..24];
        await RunAsync(Srv, "curl", ["-sSf", "-X", "PUT", $"{endpoint.TrimEnd('/')}/{name}"], null);
        return name;
    }

    /// <summary>A new server (and agent) on empty stores, then one deploy, with each link's counters read around it.</summary>
    private static async Task<Measured> DeployColdAsync(string project, string home, string folder, string[] serverOptions)
    {
        var processes = new List<Process>();
        try
        {
            var server = Start(processes, Srv, ["server", "--data", Path.Combine(folder, "server"), "--host", Address, "--port", "0", "--json", .. serverOptions], S3Credentials);
            using var deadline = new CancellationTokenSource(Deadline);
            var ready = JsonNode.Parse(await server.StandardOutput.ReadLineAsync(deadline.Token)
                ?? throw new InvalidOperationException($"skiff server exited: {await server.StandardError.ReadToEndAsync(deadline.Token)}"))!;
            var url = (string)ready["url"]!;
            var token = (await File.ReadAllTextAsync((string)ready["token_file"]!)).Trim();
            var cache = Path.Combine(folder, "agent");
            Start(processes, Agt, ["agent", "--server", url, "--token", token, "--cache", cache, "--name", "cold"], new Dictionary<string, string>());
            var client = new Dictionary<string, string>(NoBuildServers) { ["SKIFF_HOME"] = home, ["SKIFF_URL"] = url, ["SKIFF_TOKEN"] = token };
            while (!(await RunAsync(Cli, "dotnet", [Skiff, "agents", "--json"], client)).Contains("\"ready\"", StringComparison.Ordinal))
            {
                deadline.Token.ThrowIfCancellationRequested();
                await Task.Delay(200, deadline.Token); // a benchmark's set-up, not a measurement
            }

            var before = await CountersAsync();
            var started = Stopwatch.GetTimestamp();
            var output = await RunAsync(Cli, "dotnet", [Skiff, "deploy", project, "--location", "heavy", "--json"], client);
            var wall = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var after = await CountersAsync();
            var result = JsonNode.Parse(output)!;
            if ((string?)result["outcome"] != "live")
            {
                throw new InvalidOperationException($"the cold deploy was {(string?)result["path"]}/{(string?)result["outcome"]}: {(string?)result["error"]}");
            }

            var agentCache = Directory.EnumerateFiles(cache, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            var stages = ((string[])["build", "upload", "activate"]).ToDictionary(stage => stage, stage => (double)(long)result["timings_ms"]![stage]!);
            return new Measured(wall, (long)result["uploaded"]!["bytes"]!, agentCache, after.ToDictionary(c => c.Key, c => c.Value - before[c.Key]), stages);
        }
        finally
        {
            foreach (var process in processes)
            {
                ScaleOutBenchmark.Stop(process);
            }
        }
    }

    /// <summary>Bytes through each link end so far: the CLI's and the agent's veth ends, and skiffb-srv's loopback.</summary>
    private static async Task<Dictionary<string, double>> CountersAsync()
    {
        async Task<double> Read(string space, string device, string counter) =>
            double.Parse(await RunAsync(space, "cat", [$"/sys/class/net/{device}/statistics/{counter}"], null, sysfs: true), CultureInfo.InvariantCulture);

        return new Dictionary<string, double>
        {
            ["cli->srv"] = await Read(Cli, "skb-cli", "tx_bytes"),
            ["srv->cli"] = await Read(Cli, "skb-cli", "rx_bytes"),
            ["srv->agt"] = await Read(Agt, "skb-agt", "rx_bytes"),
            ["agt->srv"] = await Read(Agt, "skb-agt", "tx_bytes"),
            ["srv loopback"] = await Read(Srv, "lo", "tx_bytes"),
        };
    }

    private static void Report(Dictionary<string, List<double>> series, int iterations)
    {
        static string Mb(double bytes) => (bytes / 1_000_000).ToString("0.00", CultureInfo.InvariantCulture);
        double Median(string name) => Stats.Percentile(series[name], 0.5);
        Console.WriteLine($"Cold `skiff deploy` of samples/Heavy over the shaped links (tbf on each veth end), {iterations} deploys per platform, alternating, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}.");
        Console.WriteLine("Each deploy: a new server on empty stores (a new PostgreSQL database and S3 bucket, or a new data folder) and a new agent with an empty cache; the CLI's build cache stays and a one-line change makes it build (without build servers, so none outlives the run).");
        Console.WriteLine();
        Console.WriteLine("| platform | wall p50 s | min–max s | build / upload / activate p50 s | uploaded MB (environment + app) | cli→srv MB | srv→cli MB | srv→agt MB | agt→srv MB | srv loopback MB | agent cache MB |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var platform in (string[])["scale-out", "embedded"])
        {
            var wall = series[$"{platform}: wall ms"];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {platform} | {Median($"{platform}: wall ms") / 1000:0.00} | {wall.Min() / 1000:0.00}–{wall.Max() / 1000:0.00} | {Median($"{platform}: build ms") / 1000:0.00} / {Median($"{platform}: upload ms") / 1000:0.00} / {Median($"{platform}: activate ms") / 1000:0.00} | {Mb(Median($"{platform}: uploaded B"))} | {Mb(Median($"{platform}: cli->srv B"))} | {Mb(Median($"{platform}: srv->cli B"))} | {Mb(Median($"{platform}: srv->agt B"))} | {Mb(Median($"{platform}: agt->srv B"))} | {Mb(Median($"{platform}: srv loopback B"))} | {Mb(Median($"{platform}: agent cache B"))} |"));
        }

        Console.WriteLine();
        foreach (var platform in (string[])["scale-out", "embedded"])
        {
            var uploaded = Median($"{platform}: uploaded B");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"- {platform}: cli→srv carried {Median($"{platform}: cli->srv B") / uploaded:0.00}× and srv→agt {Median($"{platform}: srv->agt B") / uploaded:0.00}× the bytes uploaded; skiffb-srv's loopback {Median($"{platform}: srv loopback B") / uploaded:0.00}×."));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"- wall clock p50, scale-out / embedded: {Median("scale-out: wall ms") / Median("embedded: wall ms"):0.00}; upload + activate (the part the links carry) p50, scale-out / embedded: {(Median("scale-out: upload ms") + Median("scale-out: activate ms")) / (Median("embedded: upload ms") + Median("embedded: activate ms")):0.00}"));
    }

    /// <summary>A long-running <c>skiff</c> process in a namespace, by nsenter: it execs (the PID is skiff's) and, unlike <c>ip netns exec</c>, keeps /sys/fs/cgroup, which the agent's sandbox needs.</summary>
    private static Process Start(List<Process> processes, string space, string[] arguments, IReadOnlyDictionary<string, string> environment)
    {
        var startInfo = new ProcessStartInfo("nsenter", [$"--net=/run/netns/{space}", "--", "dotnet", Skiff, .. arguments]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment)
        {
            startInfo.Environment[key] = value;
        }

        var process = Process.Start(startInfo)!;
        processes.Add(process);
        if (arguments[0] != "server")
        {
            process.OutputDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
        }

        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Runs a command to its end, in a namespace when <paramref name="space"/> is given; returns its stdout or throws with its stderr.</summary>
    private static async Task<string> RunAsync(string? space, string fileName, string[] arguments, IReadOnlyDictionary<string, string>? environment, string? workingDirectory = null, bool sysfs = false)
    {
        // `ip netns exec` mounts the namespace's own /sys, where its interfaces' counters are; nsenter keeps the caller's.
        var startInfo = space is null ? new ProcessStartInfo(fileName, arguments)
            : sysfs ? new ProcessStartInfo("ip", ["netns", "exec", space, fileName, .. arguments])
            : new ProcessStartInfo("nsenter", [$"--net=/run/netns/{space}", "--", fileName, .. arguments]);
        startInfo.RedirectStandardOutput = true;
        startInfo.RedirectStandardError = true;
        startInfo.WorkingDirectory = workingDirectory ?? "/";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[key] = value;
        }

        using var process = Process.Start(startInfo)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode == 0
            ? await stdout
            : throw new InvalidOperationException($"{fileName} {string.Join(' ', arguments)} failed ({process.ExitCode}) in {space ?? "the root namespace"}: {await stderr}{await stdout}");
    }

    private static async Task TryAsync(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (InvalidOperationException e)
        {
            await Console.Error.WriteLineAsync($"while stopping: {e.Message}");
        }
    }
}
