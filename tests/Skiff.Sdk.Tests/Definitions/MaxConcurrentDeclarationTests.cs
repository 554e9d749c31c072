using System.Text.Json;
using Skiff.Sdk.Protocol;

namespace Skiff.Sdk.Tests.Definitions;

/// <summary>Declaring a job's concurrency limit (docs/run-queue.md): checked where declared, described to the server as declared.</summary>
public sealed class MaxConcurrentDeclarationTests
{
    private static readonly Func<OpContext, Task> Nothing = _ => Task.CompletedTask;

    [Fact]
    public void A_limit_travels_in_the_definitions_and_a_job_without_one_is_described_as_before()
    {
        var catalog = new JobCatalog();
        catalog.Job("load").MaxConcurrent(2).Run(Nothing);
        catalog.Job("plain").Run(Nothing);

        var json = JsonSerializer.Serialize(DefinitionsJson.Describe(catalog.Build()), ProtocolJson.Wire.IReadOnlyListJobDescription);
        using var document = JsonDocument.Parse(json);

        document.RootElement[0].GetProperty("max_concurrent").GetInt32().ShouldBe(2);
        document.RootElement[1].TryGetProperty("max_concurrent", out _).ShouldBeFalse();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void A_limit_below_one_is_refused_where_it_is_declared(int limit)
    {
        var refused = Should.Throw<ArgumentOutOfRangeException>(() => new JobCatalog().Job("load").MaxConcurrent(limit));

        refused.Message.ShouldContain($"Job 'load': MaxConcurrent takes 1 or more runs at once, not {limit}; leave it out for no limit.");
    }
}
