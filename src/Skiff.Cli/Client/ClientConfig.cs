using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Client;

namespace Skiff.Cli.Client;

/// <summary>
/// Where a client command finds its server: <c>--server</c>/<c>--token</c>, else <c>SKIFF_URL</c>/<c>SKIFF_TOKEN</c>,
/// else <c>--data DIR</c>'s <c>client.json</c>, else the default data folder's (written by <c>skiff up</c>).
/// </summary>
internal sealed record ClientConfig(Uri Server, string Token)
{
    public const string FileName = "client.json";

    public SkiffClient Connect() => new(Server, Token);

    public static ClientConfig Resolve(string? server, string? token, string? dataDirectory)
    {
        server ??= Environment.GetEnvironmentVariable("SKIFF_URL");
        token ??= Environment.GetEnvironmentVariable("SKIFF_TOKEN");
        if (server is null || token is null)
        {
            var path = Path.Combine(dataDirectory ?? Commands.CommonOptions.DataDirectory, FileName);
            if (File.Exists(path))
            {
                var file = JsonNode.Parse(File.ReadAllText(path));
                server ??= (string?)file?["url"];
                token ??= (string?)file?["token"];
            }
        }

        if (server is null)
        {
            throw new ClientException("no Skiff server given: start one with `skiff up`, or pass --server URL (or set SKIFF_URL).");
        }

        if (!Uri.TryCreate(server.EndsWith('/') ? server : server + "/", UriKind.Absolute, out var uri))
        {
            throw new ClientException($"'{server}' is not a server URL; expected something like http://127.0.0.1:5199.", usage: true);
        }

        return new ClientConfig(uri, token ?? "");
    }

    /// <summary>Written with 0600 permissions: it holds the token.</summary>
    public static void Write(string dataDirectory, Uri server, string token)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, FileName);
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var file = new FileStream(path + ".tmp", options);
        JsonSerializer.Serialize(file, new JsonObject { ["url"] = server.ToString().TrimEnd('/'), ["token"] = token }, new JsonSerializerOptions { WriteIndented = true });
        file.Dispose();
        File.Move(path + ".tmp", path, overwrite: true);
    }
}
