using System.CommandLine;
using System.Globalization;
using Skiff.Client.Api;

namespace Skiff.Cli.Commands;

/// <summary><c>skiff tokens create|list|revoke</c> and <c>skiff audit</c>: who may do what, and who did (docs/api.md, "Tokens and roles").</summary>
internal static class TokenCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return new Command("tokens", "Make, list and revoke API tokens with a role (admin, deploy, run, read) and optionally locations. Needs an admin token.")
        {
            CreateToken(),
            ListTokens(),
            RevokeToken(),
        };
        yield return Audit();
    }

    private static Command CreateToken()
    {
        var name = new Argument<string>("name") { Description = "The token's name; the audit log records it for everything done with the token." };
        var role = new Option<string>("--role") { Description = "admin (everything), deploy (upload, deploy, roll back, and run), run (start and cancel runs) or read (every GET).", Required = true };
        role.AcceptOnlyFromAmong("admin", "deploy", "run", "read");
        var locations = new Option<string[]>("--location") { Description = "A location the token may act on and read; repeat for more. Left out: every location.", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("create", "Make a token and print its secret, once: the server keeps only a hash of it.") { name, role, locations, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var created = await api.CreateTokenAsync(new TokenRequest(parse.GetValue(name)!, parse.GetValue(role)!, parse.GetValue(locations) ?? []), cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(QueryCommands.Node(created, ApiJson.Default.CreatedToken).ToJsonString(QueryCommands.Indented));
                return 0;
            }

            Console.WriteLine($"token '{created.Name}' ({created.Role}, {Where(created.Locations)}):");
            Console.WriteLine(created.Secret);
            Console.Error.WriteLine("This is the only time the secret is shown; give it to its user as --token or SKIFF_TOKEN.");
            return 0;
        }));
        return command;
    }

    private static Command ListTokens()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("list", "List the tokens with their role and locations (never their secrets).") { json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var tokens = await api.ListTokensAsync(cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(QueryCommands.Node(tokens, ApiJson.Default.IReadOnlyListTokenSummary).ToJsonString(QueryCommands.Indented));
                return 0;
            }

            Console.Write(QueryCommands.Table(
                ["TOKEN", "ROLE", "LOCATIONS", "CREATED", "BY"],
                [.. tokens.Select(t => new[] { t.Name, t.Role, Where(t.Locations), t.CreatedAt is { } at ? When(at) : "(data folder)", t.CreatedBy ?? "-" })]));
            return 0;
        }));
        return command;
    }

    private static Command RevokeToken()
    {
        var name = new Argument<string>("name") { Description = "The token to revoke." };
        var client = new ClientOptions();
        var command = new Command("revoke", "Revoke a token: every server refuses it from its next request on.") { name };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var revoked = await api.RevokeTokenAsync(parse.GetValue(name)!, cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"token '{revoked.Name}' revoked");
            return 0;
        }));
        return command;
    }

    private static Command Audit()
    {
        var location = new Option<string?>("--location") { Description = "Only the changes to this location." };
        var limit = new Option<int>("--limit") { Description = "At most this many, newest first (1–1000).", DefaultValueFactory = _ => 50 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var client = new ClientOptions();
        var command = new Command("audit", "List the changes made through the API (deploys, rollbacks, runs, cancels, tokens, gc, drains) with the token that made each. Needs an admin token.") { location, limit, json };
        client.AddTo(command);
        command.SetAction((parse, cancellationToken) => CommandRunner.RunAsync(async () =>
        {
            using var api = client.Connect(parse);
            var entries = await api.ListAuditAsync(parse.GetValue(location), parse.GetValue(limit), cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(QueryCommands.Node(entries, ApiJson.Default.IReadOnlyListAuditEntry).ToJsonString(QueryCommands.Indented));
                return 0;
            }

            Console.Write(QueryCommands.Table(
                ["WHEN", "TOKEN", "ACTION", "LOCATION", "TARGET", "DETAIL"],
                [.. entries.Select(e => new[] { When(e.At), e.Token, e.Action, e.Location ?? "-", e.Target ?? "-", e.Detail ?? "-" })]));
            return 0;
        }));
        return command;
    }

    private static string Where(IReadOnlyList<string> locations) => locations.Count == 0 ? "every location" : string.Join(",", locations);

    private static string When(DateTimeOffset at) => at.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
}
