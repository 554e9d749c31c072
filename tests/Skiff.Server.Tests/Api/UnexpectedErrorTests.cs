using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Skiff.Server.Api;
using Skiff.Server.Hosting;

namespace Skiff.Server.Tests.Api;

/// <summary>An error nobody foresaw in an endpoint: logged with what was being done and for whom, answered 500 with the request's id.</summary>
public sealed class UnexpectedErrorTests
{
    [Fact]
    public async Task An_unexpected_exception_is_logged_with_the_request_and_answered_500_with_its_id()
    {
        var logged = new CollectingLogger();
        var context = new DefaultHttpContext { TraceIdentifier = "req-42" };
        context.Request.Method = "POST";
        context.Request.Path = "/api/v1/deployments";
        context.Response.Body = new MemoryStream();
        context.Items["skiff.caller"] = new Caller("ci-deployer", ApiRole.Deploy, []);

        await ApiErrors.HandleAsync(context, () => throw new InvalidOperationException("the plan had no steps"), "/data", logged);

        context.Response.StatusCode.ShouldBe(500);
        var answer = JsonNode.Parse(Encoding(context))!;
        ((string)answer["error"]!).ShouldContain("request req-42");
        ((string)answer["error"]!).ShouldNotContain("the plan had no steps", customMessage: "the exception's text stays in the log");
        var entry = logged.Entries.ShouldHaveSingleItem();
        entry.Level.ShouldBe(LogLevel.Error);
        entry.EventId.ShouldBe(1001);
        entry.Message.ShouldBe("POST /api/v1/deployments failed with an unexpected error (request req-42, token ci-deployer); answered 500");
        entry.Exception.ShouldBeOfType<InvalidOperationException>().Message.ShouldBe("the plan had no steps");
    }

    [Fact]
    public async Task Errors_a_client_caused_and_a_client_that_went_away_are_not_logged_as_failures()
    {
        var logged = new CollectingLogger();
        var notFound = new DefaultHttpContext { Response = { Body = new MemoryStream() } };
        using var aborted = new CancellationTokenSource();
        await aborted.CancelAsync();
        var gone = new DefaultHttpContext { RequestAborted = aborted.Token, Response = { Body = new MemoryStream() } };

        await ApiErrors.HandleAsync(notFound, () => throw new NotFoundException("there is no location 'x'"), "/data", logged);
        await ApiErrors.HandleAsync(gone, () => throw new OperationCanceledException(aborted.Token), "/data", logged);

        notFound.Response.StatusCode.ShouldBe(404);
        logged.Entries.ShouldBeEmpty();
    }

    private static string Encoding(HttpContext context) => System.Text.Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray());

    private sealed record Entry(LogLevel Level, int EventId, string Message, Exception? Exception);

    /// <summary>Keeps what is logged, as a test reads it.</summary>
    private sealed class CollectingLogger : ILogger
    {
        public List<Entry> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add(new Entry(logLevel, eventId.Id, formatter(state, exception), exception));
    }
}
