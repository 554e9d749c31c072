using System.CommandLine;
using Skiff.Cli.Client;
using Skiff.Client;

namespace Skiff.Cli.Commands;

/// <summary>The options every client command takes to find its server.</summary>
internal sealed class ClientOptions
{
    public Option<string?> Server { get; } = new("--server") { Description = "The server URL (else $SKIFF_URL, else client.json in the data folder)." };

    public Option<string?> Token { get; } = new("--token") { Description = "The server's bearer token (else $SKIFF_TOKEN, else client.json)." };

    public Option<string> Data { get; } = CommonOptions.Folder("--data", "The data folder whose client.json to use.", "");

    public void AddTo(Command command)
    {
        command.Options.Add(Server);
        command.Options.Add(Token);
        command.Options.Add(Data);
    }

    public SkiffClient Connect(ParseResult parse) =>
        ClientConfig.Resolve(parse.GetValue(Server), parse.GetValue(Token), parse.GetValue(Data)).Connect();
}
