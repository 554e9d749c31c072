namespace Skiff.Core.Archives;

/// <summary>
/// CRC-32 as gzip uses it (IEEE 802.3, reflected polynomial 0xEDB88320). Written here because
/// System.IO.Hashing is not part of the shared framework and Skiff.Core takes no package for it.
/// </summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    /// <summary>The CRC-32 of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Update(0, data);

    /// <summary>
    /// Continues a CRC-32 over more data: <c>Update(Update(0, a), b) == Compute(a + b)</c>, the same
    /// convention as zlib's <c>crc32()</c>.
    /// </summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        var table = Table;
        crc = ~crc;
        foreach (var b in data)
        {
            crc = table[(byte)(crc ^ b)] ^ (crc >> 8);
        }

        return ~crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < table.Length; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        return table;
    }
}
