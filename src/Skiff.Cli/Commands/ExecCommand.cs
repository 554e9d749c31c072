using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Skiff.Core.Blobs;
using Skiff.Core.Materialization;

namespace Skiff.Cli.Commands;

/// <summary><c>skiff exec RELEASE [--store DIR] [--cache DIR] [-- ARGS]</c></summary>
internal static class ExecCommand
{
    public static Command Create()
    {
        var release = new Argument<string>("release") { Description = "The release id (sha256:…) or a unique prefix of its hex digits." };
        var arguments = new Argument<string[]>("args")
        {
            Description = "Arguments for the app, after --.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var store = CommonOptions.Store();
        var cache = CommonOptions.Folder("--cache", "Where releases are unpacked.", "cache");

        var command = new Command("exec", "Unpack a release from the store (packages and source from their own blobs) and run it with `dotnet exec`.")
        {
            release, arguments, store, cache,
        };
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            var blobs = new FileBlobStore(parse.GetValue(store)!);
            var digest = await ReleaseReference.ResolveAsync(blobs, parse.GetValue(release)!, cancellationToken).ConfigureAwait(false);
            var materialized = await new Materializer(blobs, parse.GetValue(cache)!)
                .MaterializeAsync(digest, cancellationToken).ConfigureAwait(false);
            return await RunAsync(materialized, parse.GetValue(arguments) ?? [], cancellationToken).ConfigureAwait(false);
        }));
        return command;
    }

    private static async Task<int> RunAsync(MaterializedRelease release, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        // A content root the caller chose is kept, as `dotnet run` would keep it.
        var environment = release.ExecEnvironment()
            .Where(v => Environment.GetEnvironmentVariable(v.Key) is null)
            .ToDictionary();
        if (OperatingSystem.IsLinux())
        {
            // Returns only by throwing: from here on this process is the app.
            ProcessReplacement.Exec("dotnet", release.ExecArguments(arguments), environment);
        }

        // Elsewhere (no Skiff target today) a child process, which passes Ctrl-C on through the process group only.
        var startInfo = new ProcessStartInfo("dotnet") { UseShellExecute = false };
        foreach (var argument in release.ExecArguments(arguments))
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            startInfo.Environment[key] = value;
        }

        using var process = Process.Start(startInfo)!;
        // Ctrl-C reaches the app too (same process group); wait for it to decide its own exit code.
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => context.Cancel = true);
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return process.ExitCode;
    }
}
