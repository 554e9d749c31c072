using System.Text;
using System.Text.Json.Nodes;
using Skiff.Agent.CodeServers;

namespace Skiff.Agent.Tests.CodeServers;

public sealed class CodeServerHelloTests
{
    private static byte[] Line(JsonObject hello) => Encoding.UTF8.GetBytes(hello.ToJsonString());

    private static JsonObject Hello(int? protocol, string sdk = "0.1.0")
    {
        var hello = new JsonObject { ["type"] = "hello", ["sdk"] = sdk, ["pid"] = 1, ["jobs"] = 1 };
        if (protocol is { } version)
        {
            hello["protocol"] = version;
        }

        return hello;
    }

    [Fact]
    public void A_protocol_the_agent_speaks_is_accepted()
    {
        var hello = CodeServerHello.Check(Line(Hello(1)), "code server of a");

        hello.Protocol.ShouldBe(1);
        hello.Sdk.ShouldBe("0.1.0");
        hello.Jobs.ShouldBe(1);
    }

    [Fact]
    public void A_first_message_that_is_not_a_hello_is_refused_quoting_it()
    {
        var refused = Should.Throw<CodeServerException>(() => CodeServerHello.Check("{\"type\":\"health\",\"id\":1}"u8.ToArray(), "code server of a"));

        refused.Message.ShouldBe("code server of a: the code server's first message was not hello: {\"type\":\"health\",\"id\":1}");
    }

    [Fact]
    public void A_newer_sdk_is_refused_naming_both_versions_and_what_to_do()
    {
        var refused = Should.Throw<CodeServerException>(() => CodeServerHello.Check(Line(Hello(2, "0.9.0")), "code server of a"));

        refused.Code.ShouldBe("unsupported_protocol");
        refused.Message.ShouldBe(
            $"code server of a uses Skiff.Sdk 0.9.0, which speaks code-server protocol 2; this agent (skiff {CodeServerHello.AgentVersion}) serves protocol 1 only: " +
            "upgrade the agent to a skiff release that serves protocol 2, or reference a Skiff.Sdk version that speaks protocol 1.");
    }

    [Fact]
    public void An_older_sdk_is_told_to_update_its_reference()
    {
        var refused = Should.Throw<CodeServerException>(() => CodeServerHello.Check(Line(Hello(0, "0.0.1")), "code server of a"));

        refused.Message.ShouldContain("Skiff.Sdk 0.0.1, which speaks code-server protocol 0");
        refused.Message.ShouldContain("update the project's Skiff.Sdk reference to a version that speaks protocol 1");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("\"1\"")]
    public void A_hello_without_a_numeric_protocol_is_refused(string? protocol)
    {
        var hello = Hello(null, "0.1.0");
        if (protocol is not null)
        {
            hello["protocol"] = JsonNode.Parse(protocol);
        }

        var refused = Should.Throw<CodeServerException>(() => CodeServerHello.Check(Line(hello), "code server of a"));

        refused.Message.ShouldStartWith("code server of a (Skiff.Sdk 0.1.0) did not say which code-server protocol it speaks");
    }
}
