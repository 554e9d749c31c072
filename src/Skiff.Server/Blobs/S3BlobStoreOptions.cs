using System.Text.RegularExpressions;
using Skiff.Core;

namespace Skiff.Server.Blobs;

/// <summary>
/// Where an S3 blob store is: <c>s3://BUCKET[/PREFIX][?endpoint=URL&amp;region=REGION&amp;timeout=SECONDS]</c>.
/// Credentials are not part of it (a URL ends up in shell history and process lists): they come from
/// <c>AWS_ACCESS_KEY_ID</c> and <c>AWS_SECRET_ACCESS_KEY</c> (and <c>AWS_SESSION_TOKEN</c> when set).
/// </summary>
internal sealed partial record S3BlobStoreOptions
{
    public const string Syntax = "s3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT&region=REGION&timeout=SECONDS]";

    public required string Bucket { get; init; }

    /// <summary>Prepended to every key; empty, or ends with <c>/</c>.</summary>
    public string Prefix { get; init; } = "";

    /// <summary>An S3-compatible endpoint (s3rver, MinIO); null means AWS's own for <see cref="Region"/>.</summary>
    public Uri? Endpoint { get; init; }

    /// <summary>The region requests are signed for. Default us-east-1.</summary>
    public string Region { get; init; } = "us-east-1";

    /// <summary>How long one request may take before the store counts as unavailable. Default 5 minutes (a 4 GiB blob at 100 Mbit/s).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);

    public required string AccessKey { get; init; }

    public required string SecretKey { get; init; }

    public string? SessionToken { get; init; }

    /// <summary>For messages: <c>s3://bucket/prefix at http://endpoint</c>.</summary>
    public override string ToString() =>
        $"s3://{Bucket}/{Prefix}{(Endpoint is null ? $" in {Region}" : $" at {Endpoint.GetLeftPart(UriPartial.Authority)}")}";

    /// <summary>Reads the <c>--blobs</c> value, taking credentials from <paramref name="environment"/>.</summary>
    /// <exception cref="InvalidBlobStoreException">It is not such a URL, or the credentials are not set.</exception>
    public static S3BlobStoreOptions Parse(string text, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || url.Scheme != "s3" || url.UserInfo.Length > 0)
        {
            throw new InvalidBlobStoreException(text, $"expected {Syntax}, or leave --blobs out to keep blobs in the data folder");
        }

        // Uri lowercases the host: read the bucket from the text to catch an uppercase one.
        var bucket = text["s3://".Length..].Split('/', '?')[0];
        if (!BucketName().IsMatch(bucket))
        {
            throw new InvalidBlobStoreException(text, $"'{bucket}' is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit)");
        }

        var prefix = Uri.UnescapeDataString(url.AbsolutePath).Trim('/');
        var options = new S3BlobStoreOptions
        {
            Bucket = bucket,
            Prefix = prefix.Length == 0 ? "" : prefix + "/",
            AccessKey = environment("AWS_ACCESS_KEY_ID") ?? "",
            SecretKey = environment("AWS_SECRET_ACCESS_KEY") ?? "",
            SessionToken = environment("AWS_SESSION_TOKEN") is { Length: > 0 } token ? token : null,
        };
        foreach (var pair in url.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var (name, value) = pair.IndexOf('=', StringComparison.Ordinal) is var equals and >= 0
                ? (pair[..equals], Uri.UnescapeDataString(pair[(equals + 1)..]))
                : (pair, "");
            options = name switch
            {
                "endpoint" when Uri.TryCreate(value, UriKind.Absolute, out var endpoint) && endpoint.Scheme is "http" or "https" =>
                    options with { Endpoint = endpoint },
                "endpoint" => throw new InvalidBlobStoreException(text, $"endpoint '{value}' is not an http:// or https:// URL"),
                "region" when RegionName().IsMatch(value) => options with { Region = value },
                "region" => throw new InvalidBlobStoreException(text, $"region '{value}' is not a region name such as us-east-1"),
                "timeout" when int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0 =>
                    options with { Timeout = TimeSpan.FromSeconds(seconds) },
                "timeout" => throw new InvalidBlobStoreException(text, $"timeout '{value}' is not a whole number of seconds above 0"),
                _ => throw new InvalidBlobStoreException(text, $"'{name}' is not a setting; the settings are endpoint, region and timeout"),
            };
        }

        if (options.AccessKey.Length == 0 || options.SecretKey.Length == 0)
        {
            throw new InvalidBlobStoreException(text, "it needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (s3rver accepts S3RVER and S3RVER)");
        }

        return options;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    private static partial Regex BucketName();

    [GeneratedRegex("^[a-z0-9-]{1,40}$")]
    private static partial Regex RegionName();
}

/// <summary>A <c>--blobs</c> value that does not say where a blob store is.</summary>
internal sealed class InvalidBlobStoreException(string text, string reason)
    : SkiffException($"--blobs '{text}' is not a blob store: {reason}.");
