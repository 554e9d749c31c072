using System.CommandLine;
using Skiff.Cli.Commands;

var root = new RootCommand("Skiff: deploy .NET job code in about a second, reproducibly.")
{
    BuildCommand.Create(),
    ExecCommand.Create(),
};
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
