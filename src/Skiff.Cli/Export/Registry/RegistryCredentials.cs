using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Skiff.Client;

namespace Skiff.Cli.Export.Registry;

/// <summary>
/// A user name and password for a registry, and where they came from (said in errors; the password never is).
/// </summary>
internal sealed class RegistryCredentials(string user, string password, string source)
{
    /// <summary>The variable the password is read from with <c>--registry-user</c>: a password on a command line would be in every process list.</summary>
    public const string PasswordVariable = "SKIFF_REGISTRY_PASSWORD";

    public string User { get; } = user;

    public string Password { get; } = password;

    /// <summary>Where they came from: "--registry-user and SKIFF_REGISTRY_PASSWORD" or an auth file's path.</summary>
    public string Source { get; } = source;

    public string Basic => Convert.ToBase64String(Encoding.UTF8.GetBytes($"{User}:{Password}"));

    /// <summary>
    /// The credentials for <paramref name="target"/>, as a demanding user of podman or docker expects them found:
    /// <c>--registry-user</c> with the password in <see cref="PasswordVariable"/>; else the entry for the registry in
    /// the auth file <paramref name="authFile"/> (<c>--authfile</c>) or <c>REGISTRY_AUTH_FILE</c> alone, or else the
    /// first of the files podman and docker keep logins in that has one (<see cref="AuthFiles"/>); else none, and the
    /// push is anonymous.
    /// </summary>
    /// <exception cref="ClientException">A user without a password, a password without a user, an auth file that cannot be read.</exception>
    public static RegistryCredentials? Resolve(ImageReference target, string? user, string? authFile, IReadOnlyDictionary<string, string?> environment)
    {
        var password = environment.GetValueOrDefault(PasswordVariable);
        if (!string.IsNullOrEmpty(user))
        {
            return string.IsNullOrEmpty(password)
                ? throw new ClientException($"--registry-user {user} needs the password in the environment variable {PasswordVariable} (never on the command line); set it and run this again.", usage: true)
                : new RegistryCredentials(user, password, $"--registry-user and {PasswordVariable}");
        }

        if (!string.IsNullOrEmpty(password))
        {
            throw new ClientException($"{PasswordVariable} is set but --registry-user is not; name the user the password is for.", usage: true);
        }

        if (authFile is not null)
        {
            return File.Exists(authFile)
                ? FromAuthFile(authFile, target)
                : throw new ClientException(
                    Directory.Exists(authFile)
                        ? $"the auth file {authFile} (--authfile) is a folder; name the file, such as --authfile {Path.Combine(authFile, "auth.json")}."
                        : $"the auth file {authFile} (--authfile) does not exist; log in with `podman login --authfile {authFile} {target.Registry}`, or leave the option out.",
                    usage: true);
        }

        // REGISTRY_AUTH_FILE, as for podman, replaces the default files: a job in CI that sets it sees no stray login.
        if (environment.GetValueOrDefault("REGISTRY_AUTH_FILE") is { Length: > 0 } chosen)
        {
            return File.Exists(chosen) ? FromAuthFile(chosen, target) : null;
        }

        return AuthFiles(environment).Where(File.Exists).Select(f => FromAuthFile(f, target)).FirstOrDefault(c => c is not null);
    }

    /// <summary>
    /// Where podman and docker keep logins, in the order containers-auth.json(5) reads them:
    /// <c>$XDG_RUNTIME_DIR/containers/auth.json</c> (podman login's), <c>$XDG_CONFIG_HOME/containers/auth.json</c>, then
    /// docker's <c>$DOCKER_CONFIG/config.json</c> (<c>~/.docker/config.json</c>).
    /// </summary>
    private static IEnumerable<string> AuthFiles(IReadOnlyDictionary<string, string?> environment)
    {
        var home = environment.GetValueOrDefault("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (environment.GetValueOrDefault("XDG_RUNTIME_DIR") is { Length: > 0 } runtime)
        {
            yield return Path.Combine(runtime, "containers", "auth.json");
        }

        yield return Path.Combine(environment.GetValueOrDefault("XDG_CONFIG_HOME") is { Length: > 0 } config ? config : Path.Combine(home, ".config"), "containers", "auth.json");
        yield return Path.Combine(environment.GetValueOrDefault("DOCKER_CONFIG") is { Length: > 0 } docker ? docker : Path.Combine(home, ".docker"), "config.json");
    }

    /// <summary>
    /// The entry of <paramref name="file"/>'s <c>auths</c> for the target: the longest key that is the registry or the
    /// registry and a leading part of the image name (podman's keys), or the registry as docker writes it (<c>https://…</c>).
    /// </summary>
    private static RegistryCredentials? FromAuthFile(string file, ImageReference target)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(file))?.AsObject() ?? throw new JsonException("it is empty");
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            throw new ClientException($"the auth file {file} could not be read ({exception.Message}); fix or remove it, or pass --registry-user with {PasswordVariable}.", usage: true);
        }

        try
        {
            return FromAuths(file, root, target);
        }
        catch (InvalidOperationException exception)
        {
            // A node of another kind than the format's (auths an array, an entry a string, auth a number): JsonNode's casts throw this.
            throw new ClientException(
                $"the auth file {file} is not laid out as podman and docker write it ({{\"auths\": {{\"{target.Registry}\": {{\"auth\": \"base64 of user:password\"}}}}}}: {exception.Message}); fix or remove it, or log in again with `podman login {target.Registry}`.",
                usage: true);
        }
    }

    private static RegistryCredentials? FromAuths(string file, JsonObject root, ImageReference target)
    {
        var parts = target.Repository.Split('/');
        var keys = Enumerable.Range(0, parts.Length).Reverse().Select(n => string.Join('/', [target.Registry, .. parts[..n]]))
            .Concat([$"https://{target.Registry}", $"http://{target.Registry}", $"https://{target.Registry}/v1/", $"https://{target.Registry}/v2/"]);
        foreach (var key in keys)
        {
            if (root["auths"]?[key]?["auth"] is not JsonValue value || (string?)value is not { Length: > 0 } encoded)
            {
                continue;
            }

            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
            }
            catch (FormatException)
            {
                throw new ClientException($"the auth file {file} has an entry for {key} whose auth is not base64; log in again with `podman login {target.Registry}`.", usage: true);
            }

            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            return colon > 0
                ? new RegistryCredentials(decoded[..colon], decoded[(colon + 1)..], $"{file} (entry {key})")
                : throw new ClientException($"the auth file {file} has an entry for {key} that is not user:password; log in again with `podman login {target.Registry}`.", usage: true);
        }

        // docker login with a credential store writes an empty entry under auths and the secret elsewhere.
        if (root["credHelpers"]?[target.Registry] is not null || (root["credsStore"] is not null && root["auths"]?[target.Registry] is not null))
        {
            throw new ClientException($"the auth file {file} keeps the login for {target.Registry} in a credential helper, which skiff does not run; pass --registry-user with {PasswordVariable}, or log in with `podman login --authfile FILE {target.Registry}` and pass --authfile FILE.", usage: true);
        }

        return null;
    }
}
