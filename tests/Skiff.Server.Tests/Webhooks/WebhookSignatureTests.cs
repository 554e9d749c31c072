using Microsoft.AspNetCore.Http;
using Skiff.Server.Webhooks;
using StandardWebhooks;
using StandardWebhooks.Diagnostics;

namespace Skiff.Server.Tests.Webhooks;

/// <summary>Skiff's signatures as the Standard Webhooks library, which Skiff did not write, makes and checks them.</summary>
public sealed class WebhookSignatureTests
{
    private const string Body = """{"type":"run_failed","timestamp":"2026-11-29T06:44:46.123Z","data":{"run":"r-1","status":"failed"}}""";

    [Fact]
    public void A_signature_is_the_one_the_library_makes_and_the_library_accepts_it()
    {
        var secret = WebhookSignature.NewSecret();
        var now = DateTimeOffset.UtcNow;
        var timestamp = now.ToUnixTimeSeconds();

        var signature = WebhookSignature.Sign(secret, "msg_1", timestamp, Body);

        signature.ShouldBe(new StandardWebhook(secret).Sign("msg_1", DateTimeOffset.FromUnixTimeSeconds(timestamp), Body));
        Should.NotThrow(() => new StandardWebhook(secret).Verify(Body, Headers("msg_1", timestamp, signature)));
    }

    [Fact]
    public void A_secret_is_whsec_and_base64_of_32_random_bytes()
    {
        var secret = WebhookSignature.NewSecret();

        secret.ShouldStartWith("whsec_");
        Convert.FromBase64String(secret["whsec_".Length..]).Length.ShouldBe(32);
        WebhookSignature.NewSecret().ShouldNotBe(secret);
    }

    [Theory]
    [InlineData("id")]
    [InlineData("body")]
    [InlineData("secret")]
    public void The_library_refuses_a_signature_when_the_id_body_or_secret_differs(string changed)
    {
        var secret = WebhookSignature.NewSecret();
        var timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var signature = WebhookSignature.Sign(changed == "secret" ? WebhookSignature.NewSecret() : secret, "msg_1", timestamp, Body);

        Should.Throw<WebhookVerificationException>(() => new StandardWebhook(secret).Verify(
            changed == "body" ? Body.Replace("failed", "succeeded", StringComparison.Ordinal) : Body,
            Headers(changed == "id" ? "msg_2" : "msg_1", timestamp, signature)));
    }

    private static HeaderDictionary Headers(string id, long timestamp, string signature) => new()
    {
        ["webhook-id"] = id,
        ["webhook-timestamp"] = timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["webhook-signature"] = signature,
    };
}
