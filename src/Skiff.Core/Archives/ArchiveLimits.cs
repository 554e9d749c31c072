namespace Skiff.Core.Archives;

/// <summary>
/// How big an archive the reader accepts before it calls it a bomb. The defaults fit the largest
/// NuGet packages seen in practice (a few hundred MiB of native assets) with a wide margin.
/// </summary>
internal sealed record ArchiveLimits
{
    /// <summary>The limits used unless a caller has a reason to choose others.</summary>
    public static ArchiveLimits Default { get; } = new();

    /// <summary>The largest single file, in bytes. Default 2 GiB.</summary>
    public long MaxEntryBytes
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            field = value;
        }
    } = 2L * 1024 * 1024 * 1024;

    /// <summary>
    /// The most bytes the archive may expand to, in bytes: the whole uncompressed tar stream, headers
    /// and padding included. Default 8 GiB.
    /// </summary>
    public long MaxTotalBytes
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            field = value;
        }
    } = 8L * 1024 * 1024 * 1024;

    /// <summary>The most files in one archive. Default 200,000.</summary>
    public int MaxEntries
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            field = value;
        }
    } = 200_000;
}
