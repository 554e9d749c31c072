using System.CommandLine;
using System.Globalization;
using System.Text;
using Skiff.Client.Api;

namespace Skiff.Cli.Commands;

/// <summary>
/// <c>skiff env list|set|unset LOCATION …</c>: a location's environment variables and secrets (docs/env.md). A secret's
/// value is never printed: the server does not answer it, and this prints what it is given only by name.
/// </summary>
internal static class EnvCommands
{
    /// <summary>What a secret shows instead of its value.</summary>
    internal const string Masked = "•••••• (secret)";

    public static Command Create() =>
        new("env", "A location's environment variables and secrets: every code server and run of the location gets them. A change takes effect through a health-gated re-activation of the live release and shows in `skiff history`.")
        {
            List(),
            Set(),
            Unset(),
        };

    private static Command List()
    {
        var location = new Argument<string>("location") { Description = "The location." };
        var json = new Option<bool>("--json") { Description = "Print JSON, as GET /api/v1/locations/{name}/env answers (secrets without their values)." };
        var client = new ClientOptions();
        var command = new Command("list", "List a location's variables: plain values shown, secrets masked, with when and by whom each was set.") { location, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var env = await api.GetEnvAsync(parse.GetValue(location)!, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(QueryCommands.Node(env, ApiJson.Default.LocationEnv).ToJsonString(QueryCommands.Indented));
                return 0;
            }

            if (env.Variables.Count == 0)
            {
                Console.WriteLine($"location '{env.Location}' has no variables; `skiff env set {env.Location} KEY=VALUE` sets one.");
                return 0;
            }

            Console.Write(QueryCommands.Table(
                ["NAME", "VALUE", "SET AT", "SET BY"],
                [.. env.Variables.Select(v => new[]
                {
                    v.Name,
                    v.Secret ? Masked : Shown(v.Value ?? ""),
                    v.SetAt.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                    v.SetBy,
                })]));
            return 0;
        }));
        return command;
    }

    private static Command Set()
    {
        var location = new Argument<string>("location") { Description = "The location." };
        var pairs = new Argument<string[]>("assignments")
        {
            HelpName = "KEY=VALUE",
            Description = "Variables to set. A single KEY without '=' takes its value from standard input (piped, or typed without echo), so a secret stays out of shell history.",
            Arity = ArgumentArity.OneOrMore,
        };
        var secret = new Option<bool>("--secret") { Description = "Set them as secrets: sealed at rest, never shown by the CLI or answered by the API." };
        var client = new ClientOptions();
        var command = new Command("set", "Set variables of a location and take them live: the live release is activated again with them, health-gated; if it does not come up healthy, nothing is kept and the running version keeps serving.") { location, pairs, secret };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            var given = parse.GetValue(pairs)!;
            var settings = new List<EnvSetting>();
            foreach (var pair in given)
            {
                var equals = pair.IndexOf('=', StringComparison.Ordinal);
                if (equals < 0 && given.Length > 1)
                {
                    await Console.Error.WriteLineAsync($"error: '{pair}' has no '='; write KEY=VALUE, or give one KEY alone to read its value from standard input.").ConfigureAwait(false);
                    return CommandRunner.Usage;
                }

                var value = equals < 0 ? await ReadValueAsync(pair, cancellationToken).ConfigureAwait(false) : pair[(equals + 1)..];
                if (equals < 0 && value.Length == 0)
                {
                    // Most often a script whose standard input is empty (CI gives /dev/null), not a wish for "".
                    await Console.Error.WriteLineAsync($"error: no value for {pair} came on standard input; nothing was changed. Pipe the value in, or write {pair}= to set an empty one.").ConfigureAwait(false);
                    return CommandRunner.Usage;
                }

                settings.Add(new EnvSetting(equals < 0 ? pair : pair[..equals], value, parse.GetValue(secret)));
            }

            return await ChangeAsync(client, parse, parse.GetValue(location)!, new EnvChangeRequest(Set: settings, Who: Who()), cancellationToken).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command Unset()
    {
        var location = new Argument<string>("location") { Description = "The location." };
        var names = new Argument<string[]>("names") { HelpName = "KEY", Description = "Names of the variables to remove.", Arity = ArgumentArity.OneOrMore };
        var client = new ClientOptions();
        var command = new Command("unset", "Remove variables of a location and take that live, as `skiff env set` does.") { location, names };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(() =>
            ChangeAsync(client, parse, parse.GetValue(location)!, new EnvChangeRequest(Unset: parse.GetValue(names)!, Who: Who()), cancellationToken)));
        return command;
    }

    private static async Task<int> ChangeAsync(ClientOptions client, ParseResult parse, string location, EnvChangeRequest request, CancellationToken cancellationToken)
    {
        using var api = client.Connect(parse);
        var changed = await api.ChangeEnvAsync(location, request, cancellationToken).ConfigureAwait(false);
        switch (changed.Outcome)
        {
            case "live":
                Console.WriteLine($"env of '{location}': {changed.Change}; live as deployment {changed.Deployment?.Id} of {QueryCommands.Short(changed.Deployment?.Release)} ({changed.Deployment?.TimingsMs.GetValueOrDefault("activate")} ms)");
                return 0;
            case "stored":
                Console.WriteLine($"env of '{location}': {changed.Change}; stored: nothing is live there yet, its first deploy gets it");
                return 0;
            default:
                await Console.Error.WriteLineAsync($"error: env of '{location}' not changed ({changed.Change}): deployment {changed.Deployment?.Id} did not go live: {changed.Error?.TrimEnd('.')}. Nothing was stored; the version live before keeps serving with the environment it had.").ConfigureAwait(false);
                return CommandRunner.Failed;
        }
    }

    /// <summary>
    /// A value from standard input: everything piped in, less one final line break (what <c>echo</c> and editors add);
    /// typed at a terminal, one line with nothing echoed.
    /// </summary>
    private static async Task<string> ReadValueAsync(string name, CancellationToken cancellationToken)
    {
        if (Console.IsInputRedirected)
        {
            var text = await Console.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            return text.EndsWith("\r\n", StringComparison.Ordinal) ? text[..^2] : text.EndsWith('\n') ? text[..^1] : text;
        }

        await Console.Error.WriteAsync($"value of {name} (not echoed): ").ConfigureAwait(false);
        var value = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
            {
                break;
            }

            if (key.Key == ConsoleKey.Backspace)
            {
                value.Length = Math.Max(0, value.Length - 1);
            }
            else if (key.KeyChar != '\0')
            {
                value.Append(key.KeyChar);
            }
        }

        await Console.Error.WriteLineAsync().ConfigureAwait(false);
        return value.ToString();
    }

    private static string Who() => $"{Environment.UserName}@{Environment.MachineName}";

    /// <summary>A plain value on one table line: its first line, cut at 60 characters; "…" says there is more.</summary>
    private static string Shown(string value)
    {
        var line = value.Split('\n')[0].TrimEnd('\r');
        return line.Length > 60 ? line[..60] + "…" : line.Length < value.Length ? line + " …" : line;
    }
}
