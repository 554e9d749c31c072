using System.CommandLine;
using Skiff.Cli.Commands;
using Skiff.Cli.Tracing;

var root = new RootCommand("Skiff: deploy .NET job code in about a second, reproducibly. Data lives under $SKIFF_HOME (default ~/.skiff).")
{
    PlatformCommands.Up(),
    DeployCommand.Create(),
    DevCommand.Create(),
    BuildCommand.Create(),
    CheckCommand.Create(),
    ExecCommand.Create(),
    ExportCommand.Create(),
    PlatformCommands.Server(),
    PlatformCommands.AgentCommand(),
    ScheduleCommands.Create(),
    EnvCommands.Create(),
};
foreach (var command in QueryCommands.Create().Concat(RunCommands.Create()).Concat(TokenCommands.Create()).Concat(WebhookCommands.Create()))
{
    root.Subcommands.Add(command);
}

HelpText.Apply(root);
var parse = root.Parse(args);
if (HelpText.HasUsageErrors(parse))
{
    return HelpText.ReportUsageErrors(parse);
}

// Disposed after the command, which sends the spans still buffered before the process exits.
using var traces = CliTraces.StartExport(args);
// `up`, `server` and `agent` handle Ctrl-C and SIGTERM themselves and stop in their own time (PlatformCommands.StopSignal).
var invocation = new InvocationConfiguration();
if (PlatformCommands.StopsItself(parse.CommandResult.Command))
{
    invocation.ProcessTerminationTimeout = null;
}

return await parse.InvokeAsync(invocation).ConfigureAwait(false);
