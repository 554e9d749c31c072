using Skiff.Sdk.Tasks;

namespace Skiff.Sdk.Tests.Tasks;

/// <summary>The pool an op names in <see cref="OpContext.CallAsync{TInput, TOutput}"/>: a location, optionally pinned to a release.</summary>
public sealed class PoolReferenceTests
{
    [Theory]
    [InlineData("meshing", "meshing", null)]
    [InlineData("gpu-pool_2.eu", "gpu-pool_2.eu", null)]
    [InlineData("meshing@1a2b3c", "meshing", "1a2b3c")]
    [InlineData("meshing@sha256:1a2b3c4d5e6f", "meshing", "1a2b3c4d5e6f")]
    [InlineData("meshing@0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "meshing", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public void Parse_ReadsTheNameAndThePin(string text, string name, string? prefix)
    {
        var reference = PoolReference.Parse(text);

        reference.ShouldBe(new PoolReference(name, prefix));
        reference.ToString().ShouldBe(prefix is null ? name : $"{name}@{prefix}");
    }

    [Theory]
    [InlineData("", "No pool was given")]
    [InlineData("   ", "No pool was given")]
    [InlineData("Meshing", "'Meshing' does not name a pool: a pool is a location, named with 1 to 100 lowercase letters")]
    [InlineData("mesh ing", "'mesh ing' does not name a pool")]
    [InlineData("-meshing", "'-meshing' does not name a pool")]
    [InlineData("@1a2b3c", "'@1a2b3c' does not name a pool")]
    [InlineData("a/b@1a2b3c", "'a/b@1a2b3c' does not name a pool")]
    [InlineData("meshing@", "'meshing@' pins the release '', which is not a release prefix: after '@' give 6 to 64 lowercase hex digits")]
    [InlineData("meshing@1a2b3", "pins the release '1a2b3', which is not a release prefix")]
    [InlineData("meshing@1A2B3C4D", "pins the release '1A2B3C4D', which is not a release prefix")]
    [InlineData("meshing@latest", "pins the release 'latest', which is not a release prefix")]
    [InlineData("meshing@1a2b3c@4d5e6f", "pins the release '1a2b3c@4d5e6f', which is not a release prefix")]
    [InlineData("meshing@sha512:1a2b3c4d", "pins the release 'sha512:1a2b3c4d', which is not a release prefix")]
    public void Parse_RefusesWhatIsNotAPoolReference_SayingWhatToWrite(string text, string expected)
    {
        var problem = Should.Throw<ArgumentException>(() => PoolReference.Parse(text));

        problem.Message.ShouldContain(expected);
    }

    [Fact]
    public void Parse_RefusesATooLongPrefix()
    {
        Should.Throw<ArgumentException>(() => PoolReference.Parse("meshing@" + new string('a', 65))).Message.ShouldContain("which is not a release prefix");
    }
}
