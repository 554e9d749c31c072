using Skiff.Build.Restore;
using Skiff.Build.Sources;
using Skiff.Client;
using Skiff.Core;
using Skiff.Core.Limits;

namespace Skiff.Cli.Commands;

/// <summary>Runs a command's body and turns Skiff's errors into a message and a non-zero exit code.</summary>
internal static class CommandRunner
{
    public const int Failed = 1;

    /// <summary>Bad input (arguments, options, parameters, names that do not exist), as for a job run by hand.</summary>
    public const int Usage = 2;

    /// <summary>Stopped with Ctrl-C, as for any program.</summary>
    public const int Interrupted = 130;

    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (SkiffException exception)
        {
            await Console.Error.WriteLineAsync($"error: {exception.Message}").ConfigureAwait(false);
            var details = exception switch
            {
                CompilationFailedException compilation => compilation.Diagnostics,
                RestoreFailedException restore => restore.Output,
                _ => null,
            };
            if (!string.IsNullOrWhiteSpace(details))
            {
                await Console.Error.WriteLineAsync(details.TrimEnd()).ConfigureAwait(false);
            }

            return exception is ClientException { Usage: true } or InvalidMemoryLimitException ? Usage : Failed;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("canceled").ConfigureAwait(false);
            return Interrupted;
        }
    }
}
