using System.Diagnostics;
using System.Text;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Skiff.Testing;

/// <summary>
/// A real S3 protocol server (npm s3rver, installed by <c>scripts/s3rver.sh install</c>) on 127.0.0.1, a free port
/// and a new temp folder. <see cref="Shared"/> is started once per test process and stops with it: at exit, and
/// also when the process dies, because the server exits when its stdin (a pipe from this process) closes.
/// </summary>
internal sealed class S3Server : IAsyncDisposable
{
    public const string AccessKey = "S3RVER";
    public const string SecretKey = "S3RVER";

    private static readonly TimeSpan StartDeadline = TimeSpan.FromMinutes(3);
    private static readonly Lazy<Task<S3Server>> SharedServer = new(async () =>
    {
        var server = await StartAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return server;
    });

    private readonly string _directory;
    private readonly StringBuilder _errors;
    private Process _process;

    private S3Server(Process process, string directory, Uri endpoint, StringBuilder errors)
    {
        _process = process;
        _directory = directory;
        _errors = errors;
        Endpoint = endpoint;
    }

    /// <summary>
    /// The server the whole test process shares; make a bucket or prefix of your own in it. A test that finds it
    /// ended fails with what it wrote on stderr, not with "connection refused".
    /// </summary>
    public static Task<S3Server> Shared => SharedAliveAsync();

    private static async Task<S3Server> SharedAliveAsync()
    {
        var server = await SharedServer.Value;
        if (server._process.HasExited)
        {
            throw new InvalidOperationException($"the shared s3rver exited ({server._process.ExitCode}); its stderr:\n{server.Errors}");
        }

        return server;
    }

    /// <summary>What the server wrote on stderr so far.</summary>
    public string Errors
    {
        get
        {
            lock (_errors)
            {
                return _errors.ToString();
            }
        }
    }

    public Uri Endpoint { get; }

    /// <summary>Environment variables that give the S3 credentials s3rver accepts.</summary>
    public static IReadOnlyDictionary<string, string> Credentials { get; } = new Dictionary<string, string>
    {
        ["AWS_ACCESS_KEY_ID"] = AccessKey,
        ["AWS_SECRET_ACCESS_KEY"] = SecretKey,
    };

    /// <summary>Installs s3rver if needed and starts a server of its own (for a test that stops it).</summary>
    public static async Task<S3Server> StartAsync()
    {
        using var deadline = new CancellationTokenSource(StartDeadline);
        var script = Path.Combine(Workspace.RepositoryRoot, "scripts", "s3rver.sh");
        var install = await CliProcess.RunAsync("bash", [script, "install"], Workspace.RepositoryRoot, deadline: StartDeadline);
        if (install.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/s3rver.sh install failed:\n{install}");
        }

        var directory = Directory.CreateTempSubdirectory("skiff-s3rver-").FullName;
        var errors = new StringBuilder();
        var (process, endpoint) = await LaunchAsync(directory, 0, errors, deadline.Token);
        return new S3Server(process, directory, endpoint, errors);
    }

    /// <summary>Stops this server as a crash would (its objects stay in its folder); <see cref="StartAgainAsync"/> brings it back.</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Starts a stopped server again on the same port and folder, so what it held and every URL naming it work again.</summary>
    public async Task StartAgainAsync()
    {
        if (!_process.HasExited)
        {
            throw new InvalidOperationException("s3rver is still running; stop it first.");
        }

        using var deadline = new CancellationTokenSource(StartDeadline);
        _process.Dispose();
        (_process, _) = await LaunchAsync(_directory, Endpoint.Port, _errors, deadline.Token);
    }

    /// <summary>Starts s3rver; what it writes on stderr goes to <paramref name="errors"/> as it comes.</summary>
    private static async Task<(Process Process, Uri Endpoint)> LaunchAsync(string directory, int port, StringBuilder errors, CancellationToken cancellationToken)
    {
        var startInfo = CliProcess.StartInfo(
            "node",
            [Path.Combine(Workspace.RepositoryRoot, ".tools", "s3rver", "serve.js"), directory, port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--exit-with-stdin"],
            directory,
            environment: null);
        startInfo.RedirectStandardInput = true;
        var process = Process.Start(startInfo)!;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (errors)
                {
                    errors.AppendLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync(cancellationToken);
            if (line is null)
            {
                await process.WaitForExitAsync(cancellationToken);
                lock (errors)
                {
                    throw new InvalidOperationException($"s3rver exited before it was ready: {errors}");
                }
            }

            const string Ready = "s3rver listening on ";
            if (line.StartsWith(Ready, StringComparison.Ordinal))
            {
                return (process, new Uri(line[Ready.Length..]));
            }
        }
    }

    /// <summary>A client that talks to this server directly, to look or reach behind a store's back.</summary>
    public AmazonS3Client CreateClient() => new(
        new BasicAWSCredentials(AccessKey, SecretKey),
        new AmazonS3Config
        {
            ServiceURL = Endpoint.ToString(),
            AuthenticationRegion = "us-east-1",
            ForcePathStyle = true,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });

    /// <summary>Creates a new bucket with a unique name and returns the name.</summary>
    public async Task<string> CreateBucketAsync()
    {
        var name = $"skiff-{Guid.NewGuid():N}"[..24];
        using var client = CreateClient();
        await client.PutBucketAsync(new PutBucketRequest { BucketName = name });
        return name;
    }

    /// <summary>Every key in <paramref name="bucket"/> under <paramref name="prefix"/>.</summary>
    public async Task<List<string>> KeysAsync(string bucket, string prefix = "")
    {
        using var client = CreateClient();
        var keys = new List<string>();
        string? continuation = null;
        do
        {
            var page = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket, Prefix = prefix, ContinuationToken = continuation });
            keys.AddRange((page.S3Objects ?? []).Select(o => o.Key));
            continuation = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (continuation is not null);
        return keys;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
