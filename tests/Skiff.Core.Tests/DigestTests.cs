using System.Text.Json;

namespace Skiff.Core.Tests;

public sealed class DigestTests
{
    private const string Abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    [Fact]
    public void Parse_ValidDigest_RoundTripsThroughToString()
    {
        var digest = Digest.Parse(Abc);

        digest.ToString().ShouldBe(Abc);
        digest.Hex.ShouldBe(Abc["sha256:".Length..]);
        digest.Short.ShouldBe("ba7816bf8f01");
        Digest.Parse(digest.ToString()).ShouldBe(digest);
    }

    [Theory]
    [InlineData("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")]
    [InlineData("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015aD")]
    [InlineData("SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a")]
    [InlineData("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0")]
    [InlineData("sha256:ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("sha256: a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("sha256:")]
    [InlineData("")]
    public void Parse_InvalidText_IsRejected(string text)
    {
        Digest.TryParse(text, out _).ShouldBeFalse();

        var error = Should.Throw<InvalidDigestException>(() => Digest.Parse(text));
        error.Text.ShouldBe(text);
        error.Message.ShouldContain("lowercase hex");
    }

    [Fact]
    public void TryParse_Null_IsRejected() => Digest.TryParse(null, out _).ShouldBeFalse();

    [Fact]
    public void TryParseHex_BareHex_ParsesToTheSameDigest()
    {
        Digest.TryParseHex(Abc["sha256:".Length..], out var digest).ShouldBeTrue();
        digest.ShouldBe(Digest.Parse(Abc));

        Digest.TryParseHex(Abc, out _).ShouldBeFalse();
        Digest.TryParseHex(Abc["sha256:".Length..].ToUpperInvariant(), out _).ShouldBeFalse();
    }

    [Fact]
    public void Compute_Abc_MatchesTheKnownSha256()
    {
        Digest.Compute("abc"u8).ToString().ShouldBe(Abc);
    }

    [Fact]
    public async Task ComputeAsync_Abc_MatchesTheKnownSha256()
    {
        using var stream = new MemoryStream("abc"u8.ToArray());

        (await Digest.ComputeAsync(stream, CancellationToken.None)).ToString().ShouldBe(Abc);
    }

    [Fact]
    public void FromHash_WrongLength_IsRejected()
    {
        Should.Throw<ArgumentException>(() => Digest.FromHash(new byte[31]));
    }

    [Fact]
    public void Default_HasNoValue()
    {
        default(Digest).ToString().ShouldBe("(no digest)");
        Should.Throw<InvalidOperationException>(() => default(Digest).Hex);
    }

    [Fact]
    public void Equality_And_Ordering_FollowTheHex()
    {
        var a = Digest.Compute("a"u8);
        var b = Digest.Compute("b"u8);

        (a == Digest.Parse(a.ToString())).ShouldBeTrue();
        (a != b).ShouldBeTrue();
        a.GetHashCode().ShouldBe(Digest.Parse(a.ToString()).GetHashCode());
        Math.Sign(a.CompareTo(b)).ShouldBe(Math.Sign(string.CompareOrdinal(a.Hex, b.Hex)));
    }

    [Fact]
    public void Json_RoundTripsAsTheDigestString()
    {
        var holder = new Holder(Digest.Parse(Abc));

        var json = JsonSerializer.Serialize(holder);

        json.ShouldBe($$"""{"Blob":"{{Abc}}"}""");
        JsonSerializer.Deserialize<Holder>(json)!.Blob.ShouldBe(holder.Blob);
    }

    [Theory]
    [InlineData("""{"Blob":"sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"}""")]
    [InlineData("""{"Blob":"md5:900150983cd24fb0d6963f7d28e17f72"}""")]
    [InlineData("""{"Blob":null}""")]
    public void Json_InvalidDigest_IsRejected(string json)
    {
        Should.Throw<JsonException>(() => JsonSerializer.Deserialize<Holder>(json));
    }

    private sealed record Holder(Digest Blob);
}
