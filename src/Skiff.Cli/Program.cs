using System.CommandLine;
using Skiff.Cli.Commands;

var root = new RootCommand("Skiff: deploy .NET job code in about a second, reproducibly.")
{
    PlatformCommands.Up(),
    DeployCommand.Create(),
    DevCommand.Create(),
    BuildCommand.Create(),
    ExecCommand.Create(),
    PlatformCommands.Server(),
    PlatformCommands.AgentCommand(),
};
foreach (var command in QueryCommands.Create().Concat(RunCommands.Create()))
{
    root.Subcommands.Add(command);
}

return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
