using System.Globalization;
using Npgsql;

namespace Skiff.Server.Metadata;

internal sealed partial class PostgresMetadataStore
{
    /// <summary>
    /// Whether <paramref name="value"/> names a PostgreSQL database as <see cref="ParseConnectionString"/>
    /// reads one; otherwise <paramref name="problem"/> says why not and what to give instead.
    /// </summary>
    public static bool TryParseConnectionString(string value, out string? problem)
    {
        try
        {
            ParseConnectionString(value);
            problem = null;
            return true;
        }
        catch (MetadataStoreException e)
        {
            problem = e.Message;
            return false;
        }
    }

    /// <summary>
    /// Reads a database address in either form people have at hand: a URL,
    /// <c>postgres://user[:password]@host[:port]/database[?key=value&amp;…]</c> (as libpq, Heroku and most
    /// hosted PostgreSQL services print it; query keys are Npgsql connection string keywords), or an Npgsql
    /// connection string, <c>Host=…;Port=…;Username=…;Password=…;Database=…</c>. A host is required.
    /// </summary>
    /// <exception cref="MetadataStoreException">Neither form, or a form with a missing host or an unknown keyword.</exception>
    internal static NpgsqlConnectionStringBuilder ParseConnectionString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var trimmed = value.Trim();
        NpgsqlConnectionStringBuilder builder;
        if (trimmed.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || trimmed.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            builder = FromUrl(trimmed);
        }
        else if (trimmed.Contains('=', StringComparison.Ordinal))
        {
            try
            {
                builder = new NpgsqlConnectionStringBuilder(trimmed);
            }
            catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
            {
                throw MetadataStoreException.BadConnectionString($"it is not a valid Npgsql connection string ({e.Message})");
            }
        }
        else
        {
            throw MetadataStoreException.BadConnectionString("it is neither a postgres:// URL nor an Npgsql connection string");
        }

        if (string.IsNullOrWhiteSpace(builder.Host))
        {
            throw MetadataStoreException.BadConnectionString("it names no host");
        }

        // Npgsql would take the user's name, often "postgres": a platform's tables must not land there unasked.
        if (string.IsNullOrWhiteSpace(builder.Database))
        {
            throw MetadataStoreException.BadConnectionString("it names no database (the one Skiff keeps its tables in, which must exist)");
        }

        return builder;
    }

    private static NpgsqlConnectionStringBuilder FromUrl(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw MetadataStoreException.BadConnectionString("it is not a valid URL with a host");
        }

        var builder = new NpgsqlConnectionStringBuilder { Host = uri.Host.Trim('[', ']') };
        if (!uri.IsDefaultPort && uri.Port > 0)
        {
            builder.Port = uri.Port;
        }

        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            builder.Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (colon >= 0)
            {
                builder.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
        }

        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length > 0)
        {
            builder.Database = database;
        }

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(equals < 0 ? pair : pair[..equals]);
            var setting = equals < 0 ? "" : Uri.UnescapeDataString(pair[(equals + 1)..]);
            try
            {
                builder[key] = setting;
            }
            catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
            {
                throw MetadataStoreException.BadConnectionString($"its query setting '{key}' is not an Npgsql connection string keyword with a valid value ({e.Message})");
            }
        }

        return builder;
    }

    /// <summary>The database as messages name it: a URL without the password.</summary>
    private static string Describe(NpgsqlConnectionStringBuilder builder) =>
        string.Create(
            CultureInfo.InvariantCulture,
            $"postgresql://{(string.IsNullOrEmpty(builder.Username) ? "" : Uri.EscapeDataString(builder.Username) + "@")}{builder.Host}:{builder.Port}/{builder.Database ?? builder.Username}");
}
