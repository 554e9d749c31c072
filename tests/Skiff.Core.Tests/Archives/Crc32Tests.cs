using Skiff.Core.Archives;

namespace Skiff.Core.Tests.Archives;

public sealed class Crc32Tests
{
    [Fact]
    public void Compute_CheckString_GivesTheStandardCheckValue()
    {
        // The check value every CRC-32/ISO-HDLC implementation publishes.
        Crc32.Compute("123456789"u8).ShouldBe(0xCBF43926u);
    }

    [Fact]
    public void Compute_Empty_IsZero() => Crc32.Compute([]).ShouldBe(0u);

    [Fact]
    public void Update_InPieces_EqualsComputeOverTheWhole()
    {
        var data = Some.Bytes(10_000);

        var crc = 0u;
        foreach (var chunk in data.Chunk(777))
        {
            crc = Crc32.Update(crc, chunk);
        }

        crc.ShouldBe(Crc32.Compute(data));
    }
}
