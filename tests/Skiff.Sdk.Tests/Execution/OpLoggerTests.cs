using System.Text.Json;
using Microsoft.Extensions.Logging;
using Skiff.Sdk.Events;
using Skiff.Sdk.Execution;

namespace Skiff.Sdk.Tests.Execution;

/// <summary><see cref="OpContext.Logger"/>: log calls become <c>log</c> events with structured properties.</summary>
public sealed class OpLoggerTests
{
    [Fact]
    public async Task LogInformation_RendersTheMessage_AndKeepsNamedValuesAsProperties()
    {
        var log = await LogFromOpAsync(logger => logger.LogInformation("Loaded {Rows} rows from {Table}", 5, "t"));

        log.Op.ShouldBe("load");
        log.Attempt.ShouldBe(1);
        log.Level.ShouldBe("info");
        log.Message.ShouldBe("Loaded 5 rows from t");
        log.Properties!.Keys.ShouldBe(["Rows", "Table"], ignoreOrder: true);
        log.Properties["Rows"].GetInt32().ShouldBe(5);
        log.Properties["Table"].GetString().ShouldBe("t");
        log.Error.ShouldBeNull();
    }

    [Fact]
    public async Task AMessageWithoutPlaceholders_HasNoProperties()
    {
        var log = await LogFromOpAsync(logger => logger.LogWarning("Nothing to do"));

        log.Message.ShouldBe("Nothing to do");
        log.Properties.ShouldBeNull();
    }

    [Fact]
    public async Task LogError_WithAnException_CarriesTheError()
    {
        var log = await LogFromOpAsync(logger => logger.LogError(new TimeoutException("db slow"), "Query on {Table} failed", "orders"));

        log.Level.ShouldBe("error");
        log.Message.ShouldBe("Query on orders failed");
        log.Properties!["Table"].GetString().ShouldBe("orders");
        log.Error.ShouldNotBeNull();
        log.Error.Type.ShouldBe("System.TimeoutException");
        log.Error.Message.ShouldBe("db slow");
        log.Error.Stack.ShouldNotBeNull();
        log.Error.Stack.ShouldContain("db slow");
    }

    [Theory]
    [InlineData(LogLevel.Trace, "trace")]
    [InlineData(LogLevel.Debug, "debug")]
    [InlineData(LogLevel.Information, "info")]
    [InlineData(LogLevel.Warning, "warn")]
    [InlineData(LogLevel.Error, "error")]
    [InlineData(LogLevel.Critical, "critical")]
    public async Task Levels_MapToTheirEventNames(LogLevel level, string name)
    {
        var log = await LogFromOpAsync(logger => logger.Log(level, "at {Level}", level));

        log.Level.ShouldBe(name);
    }

    [Fact]
    public async Task LevelNone_IsNotLogged()
    {
        var enabled = true;
        var job = Some.Job(j => j.Op("load", context =>
        {
            enabled = context.Logger.IsEnabled(LogLevel.None);
            context.Logger.Log(LogLevel.None, "never");
            return Task.CompletedTask;
        }));

        using var run = await TestRun.CompleteAsync(job);

        enabled.ShouldBeFalse();
        run.Events.OfType(EventTypes.Log).ShouldBeEmpty();
    }

    [Fact]
    public async Task Scopes_AreAcceptedAndIgnored()
    {
        var log = await LogFromOpAsync(logger =>
        {
            using (logger.BeginScope("batch {Id}", 7))
            {
                logger.LogInformation("inside");
            }
        });

        log.Message.ShouldBe("inside");
    }

    [Fact]
    public async Task APropertyThatCannotBeSerialized_IsLoggedAsItsText()
    {
        var log = await LogFromOpAsync(logger => logger.LogInformation("Reading {Type}", typeof(string)));

        log.Properties!["Type"].GetString().ShouldBe("System.String");
    }

    [Fact]
    public async Task StructuredValues_AreKeptAsJson()
    {
        var log = await LogFromOpAsync(logger => logger.LogInformation("Tables {Tables} ratio {Ratio}", new[] { "a", "b" }, 0.5));

        log.Properties!["Tables"].GetRawText().ShouldBe("""["a","b"]""");
        log.Properties["Ratio"].ValueKind.ShouldBe(JsonValueKind.Number);
    }

    [Fact]
    public async Task APlaceholderUsedTwice_IsLoggedAndDoesNotFailTheOp()
    {
        // Microsoft.Extensions.Logging allows a name to repeat in a template; logging must never throw
        // into the op that logs.
        var log = await LogFromOpAsync(logger => logger.LogInformation("{Name} then {Name}", "a", "b"));

        log.Message.ShouldBe("a then b");
        log.Properties.ShouldNotBeNull();
        log.Properties.Keys.ShouldContain("Name");
    }

    [Fact]
    public void Properties_WrittenStraight_AreTheJsonEachValueSerializesTo()
    {
        // Strings, whole numbers and booleans skip the serializer (SdkJson.LogProperties): each must still
        // be exactly what the serializer writes, escaping included, and any other value still go through it.
        var values = new object?[] { "say \"hi\" <b> été\n", 5, long.MaxValue, true, null, 0.5, new DateTimeOffset(2026, 11, 29, 10, 0, 0, TimeSpan.FromHours(1)), Guid.Empty, new[] { 1, 2 }, typeof(string) };
        var pairs = values.Select((value, i) => new KeyValuePair<string, object?>($"P{i}", value)).Append(new("{OriginalFormat}", "template")).ToList();

        var properties = SdkJson.LogProperties(pairs, "{OriginalFormat}");

        properties.ShouldNotBeNull();
        properties.Keys.ShouldBe(values.Select((_, i) => $"P{i}"));
        for (var i = 0; i < values.Length; i++)
        {
            properties[$"P{i}"].GetRawText().ShouldBe(SdkJson.ToElement(values[i]).GetRawText(), $"value {i}: {values[i]}");
        }
    }

    [Fact]
    public void Properties_OfANameGivenTwice_KeepTheLastValue_AndNoneLeftIsNull()
    {
        SdkJson.LogProperties([new("Name", "a"), new("Name", "b"), new("{OriginalFormat}", "{Name} then {Name}")], "{OriginalFormat}")!["Name"].GetString().ShouldBe("b");
        SdkJson.LogProperties([new("{OriginalFormat}", "Nothing to do")], "{OriginalFormat}").ShouldBeNull();
    }

    private static async Task<RunEvent> LogFromOpAsync(Action<ILogger> write)
    {
        var job = Some.Job(j => j.Op("load", context =>
        {
            write(context.Logger);
            return Task.CompletedTask;
        }));

        using var run = await TestRun.CompleteAsync(job);

        run.Result.ShouldBe(RunOutcome.Succeeded, run.Events.ToString());
        return run.Events.Single(EventTypes.Log);
    }
}
