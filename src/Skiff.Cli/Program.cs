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
// No response files: an argument that starts with '@' is an argument (`skiff export @current` is a release name missing
// its location, a job parameter may be `--param to=@team`), never a file to read arguments from.
var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
if (HelpText.HasUsageErrors(parse))
{
    return HelpText.ReportUsageErrors(parse);
}

// Disposed after the command, which sends the spans still buffered before the process exits.
using var traces = CliTraces.StartExport(args);
// Ctrl-C and SIGTERM cancel a command's token, so it stops saying so and cleans up (an export's scratch folder, a build's
// lock), and end the process 2 s later if it has not. Set here: System.CommandLine 2.0.0 leaves it off by default
// (dotnet/command-line-api#2739), which let the signal kill every command outright. Commands with their own signal
// handling (PlatformCommands.HandlesSignals) keep it alone and stop in their own time.
var invocation = new InvocationConfiguration
{
    ProcessTerminationTimeout = PlatformCommands.HandlesSignals(parse.CommandResult.Command) ? null : TimeSpan.FromSeconds(2),
};

return await parse.InvokeAsync(invocation).ConfigureAwait(false);
