using System.Text.RegularExpressions;
using Skiff.Client;

namespace Skiff.Cli.Export.Registry;

/// <summary>
/// Where <c>skiff export --push</c> puts an image: <c>REGISTRY/NAME[:TAG]</c>, with the grammar of the distribution
/// project's <c>reference</c> package. The registry is always named: Skiff has no default registry to push to by accident.
/// </summary>
internal sealed partial record ImageReference(string Registry, string Repository, string Tag)
{
    public override string ToString() => $"{Registry}/{Repository}:{Tag}";

    /// <summary>Reads <paramref name="text"/>; without a tag, the image is tagged <paramref name="defaultTag"/>.</summary>
    /// <exception cref="ClientException">It is not a reference with a registry, a valid name and tag (a usage error).</exception>
    public static ImageReference Parse(string text, string defaultTag)
    {
        const string Form = "give REGISTRY/NAME[:TAG], for example 127.0.0.1:5000/team/hello:1.4";
        if (text.Contains('@', StringComparison.Ordinal))
        {
            throw Bad(text, $"it names a digest; a push names a tag, and the pushed digest is printed ({Form})");
        }

        if (text.Contains("://", StringComparison.Ordinal))
        {
            throw Bad(text, $"a reference has no scheme; leave out '{text[..(text.IndexOf("://", StringComparison.Ordinal) + 3)]}' (--insecure-registry allows plain http) ({Form})");
        }

        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var registry = slash < 0 ? text : text[..slash];
        // Docker's rule for telling a registry from a first path component: it has a dot or a port, or is localhost.
        if (!(registry.Contains('.', StringComparison.Ordinal) || registry.Contains(':', StringComparison.Ordinal) || registry == "localhost"))
        {
            throw Bad(text, $"it names no registry, and Skiff pushes to none by default ({Form})");
        }

        if (slash < 0)
        {
            throw Bad(text, $"it names the registry {registry} but no image in it ({Form})");
        }

        if (!HostPattern().IsMatch(registry))
        {
            throw Bad(text, $"'{registry}' is not a registry host[:port] ({Form})");
        }

        if (Port(registry) is { } port && port is < 1 or > 65535)
        {
            throw Bad(text, $"'{registry}' names port {port}, which no registry can listen on (1 to 65535) ({Form})");
        }

        var rest = text[(slash + 1)..];
        var colon = rest.LastIndexOf(':');
        var (repository, tag) = colon < 0 ? (rest, defaultTag) : (rest[..colon], rest[(colon + 1)..]);
        if (!RepositoryPattern().IsMatch(repository) || registry.Length + 1 + repository.Length > 255)
        {
            throw Bad(text, $"'{repository}' is not an image name: lowercase letters and digits, separated by '.', '_', '__', '-' or '/', at most 255 characters with the registry ({Form})");
        }

        if (!TagPattern().IsMatch(tag))
        {
            throw Bad(text, $"'{tag}' is not a tag: letters, digits, '_', '.', '-', not starting with '.' or '-', at most 128 characters ({Form})");
        }

        return new ImageReference(registry, repository, tag);
    }

    /// <summary>
    /// Checks the name an archive gives its image (<c>skiff export --tag</c>): <c>[REGISTRY/]NAME[:TAG]</c> by the same
    /// grammar, which <c>podman load</c> applies to it; a bad one is refused here, before anything is built.
    /// </summary>
    /// <exception cref="ClientException">It is not such a name (a usage error).</exception>
    public static string CheckArchiveName(string text)
    {
        const string Form = "give NAME[:TAG], for example skiff-release:1.4 or team/hello:1.4";
        var lastSlash = text.LastIndexOf('/');
        var colon = text.LastIndexOf(':');
        var (name, tag) = colon > lastSlash ? (text[..colon], text[(colon + 1)..]) : (text, null);
        var slash = name.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? "" : name[..slash];
        var (registry, repository) = first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost"
            ? (first, name[(slash + 1)..])
            : ("", name);
        if (text.Contains('@', StringComparison.Ordinal) || (registry.Length > 0 && !HostPattern().IsMatch(registry)) || !RepositoryPattern().IsMatch(repository) || name.Length > 255)
        {
            throw new ClientException($"--tag '{text}' is not an image name: lowercase letters and digits, separated by '.', '_', '__', '-' or '/', at most 255 characters ({Form}).", usage: true);
        }

        if (tag is not null && !TagPattern().IsMatch(tag))
        {
            throw new ClientException($"--tag '{text}': '{tag}' is not a tag: letters, digits, '_', '.', '-', not starting with '.' or '-', at most 128 characters ({Form}).", usage: true);
        }

        return text;
    }

    /// <summary>The port of a host[:port] the host pattern took (an IPv6 address is bracketed), or null.</summary>
    private static int? Port(string registry)
    {
        var colon = registry.LastIndexOf(':');
        return colon > registry.LastIndexOf(']') ? int.Parse(registry[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    private static ClientException Bad(string text, string problem) => new($"'{text}' is not an image reference to push to: {problem}.", usage: true);

    [GeneratedRegex(@"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$", RegexOptions.CultureInvariant)]
    private static partial Regex HostPattern();

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$", RegexOptions.CultureInvariant)]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();
}
