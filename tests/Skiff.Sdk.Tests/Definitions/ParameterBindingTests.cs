using Skiff.Sdk.Definitions;
using Skiff.Sdk.Tests.Execution;

namespace Skiff.Sdk.Tests.Definitions;

/// <summary><see cref="JobDefinition.Bind"/>: the values a run gives, checked against the declarations before it starts.</summary>
public sealed class ParameterBindingTests
{
    private static readonly JobDefinition Etl = Some.Job(job => job
        .Parameter("rows", 10)
        .Parameter("name", "world")
        .Parameter("ratio", 0.5)
        .Parameter("dry", false)
        .RequiredParameter<string>("table")
        .Run(_ => Task.CompletedTask), "etl");

    [Fact]
    public void Bind_FillsInDefaults()
    {
        var parameters = Etl.Bind(Some.TextParameters(("table", "t")));

        parameters.All.ShouldBe(new Dictionary<string, object?>
        {
            ["rows"] = 10L,
            ["name"] = "world",
            ["ratio"] = 0.5,
            ["dry"] = false,
            ["table"] = "t",
        }, ignoreOrder: true);
    }

    [Fact]
    public void Bind_GivenValuesReplaceDefaults()
    {
        var parameters = Etl.Bind(Some.TextParameters(("table", "t"), ("rows", "-5"), ("ratio", "1e-3"), ("dry", "True"), ("name", "a=b")));

        parameters.Get<long>("rows").ShouldBe(-5);
        parameters.Get<double>("ratio").ShouldBe(0.001);
        parameters.Get<bool>("dry").ShouldBeTrue();
        parameters.Get<string>("name").ShouldBe("a=b");
    }

    [Fact]
    public void Bind_MissingRequiredParameter_IsRejectedNamingIt()
    {
        var message = Should.Throw<ParameterException>(() => Etl.Bind(Some.NoParameters())).Message;

        message.ShouldBe("parameter 'table' (string) is required and was not given.");
    }

    [Fact]
    public void Bind_UnknownParameter_IsRejectedNamingItAndTheDeclaredOnes()
    {
        var message = Should.Throw<ParameterException>(() => Etl.Bind(Some.TextParameters(("table", "t"), ("bogus", "1")))).Message;

        message.ShouldContain("no parameter 'bogus'");
        message.ShouldContain("rows, name, ratio, dry, table");
    }

    [Fact]
    public void Bind_AnyParameterForAJobWithoutParameters_IsRejected()
    {
        var job = Some.Job(j => j.Run(_ => Task.CompletedTask), "hello");

        Should.Throw<ParameterException>(() => job.Bind(Some.TextParameters(("x", "1")))).Message
            .ShouldBe("job 'hello' takes no parameters, but 'x' was given.");
    }

    [Theory]
    [InlineData("rows", "abc", "parameter 'rows' must be an integer; got 'abc'.")]
    [InlineData("rows", "1.5", "parameter 'rows' must be an integer; got '1.5'.")]
    [InlineData("rows", "99999999999999999999", "parameter 'rows' must be an integer; got '99999999999999999999'.")]
    [InlineData("ratio", "half", "parameter 'ratio' must be a number; got 'half'.")]
    [InlineData("dry", "yes", "parameter 'dry' must be a boolean; got 'yes'.")]
    [InlineData("dry", "1", "parameter 'dry' must be a boolean; got '1'.")]
    public void Bind_TextOfTheWrongType_IsRejectedNamingTheParameter(string name, string text, string expected)
    {
        var exception = Should.Throw<ParameterException>(() => Etl.Bind(Some.TextParameters(("table", "t"), (name, text))));

        exception.Message.ShouldBe(expected);
    }

    [Theory]
    [InlineData("rows", "1.5", "parameter 'rows' must be an integer; got 1.5.")]
    [InlineData("rows", "true", "parameter 'rows' must be an integer; got true.")]
    [InlineData("rows", "\"abc\"", "parameter 'rows' must be an integer; got 'abc'.")]
    [InlineData("dry", "\"yes\"", "parameter 'dry' must be a boolean; got 'yes'.")]
    [InlineData("dry", "1", "parameter 'dry' must be a boolean; got 1.")]
    [InlineData("table", "5", "parameter 'table' must be a string; got 5.")]
    [InlineData("table", "null", "parameter 'table' must be a string; got null.")]
    [InlineData("ratio", "[1]", "parameter 'ratio' must be a number; got [1].")]
    public void Bind_JsonOfTheWrongType_IsRejectedNamingTheParameter(string name, string json, string expected)
    {
        var given = name == "table" ? Some.JsonParameters((name, json)) : Some.JsonParameters(("table", "\"t\""), (name, json));

        var exception = Should.Throw<ParameterException>(() => Etl.Bind(given));

        exception.Message.ShouldBe(expected);
    }

    [Fact]
    public void Bind_SeveralProblems_AreReportedAtOnce()
    {
        var message = Should.Throw<ParameterException>(() => Etl.Bind(Some.TextParameters(("bogus", "1"), ("rows", "many"), ("dry", "maybe")))).Message;

        message.ShouldContain("'bogus'");
        message.ShouldContain("'rows' must be an integer");
        message.ShouldContain("'dry' must be a boolean");
        message.ShouldContain("'table' (string) is required");
    }

    [Fact]
    public void Bind_JsonValuesOfTheDeclaredType_AreAccepted()
    {
        var parameters = Etl.Bind(Some.JsonParameters(("table", "\"t\""), ("rows", "42"), ("ratio", "2"), ("dry", "true")));

        parameters.All["rows"].ShouldBe(42L);
        parameters.All["ratio"].ShouldBe(2.0);
        parameters.All["dry"].ShouldBe(true);
        parameters.All["table"].ShouldBe("t");
    }

    [Fact]
    public void Bind_JsonStringsForNonStringParameters_AreAcceptedWhenTheyParse()
    {
        var parameters = Etl.Bind(Some.JsonParameters(("table", "\"t\""), ("rows", "\"42\""), ("ratio", "\"0.25\""), ("dry", "\"true\"")));

        parameters.All["rows"].ShouldBe(42L);
        parameters.All["ratio"].ShouldBe(0.25);
        parameters.All["dry"].ShouldBe(true);
    }

    [Fact]
    public void Get_IntOfAnIntegerParameter_ConvertsFromTheStoredLong()
    {
        var parameters = Etl.Bind(Some.TextParameters(("table", "t"), ("rows", "7")));

        parameters.All["rows"].ShouldBeOfType<long>();
        parameters.Get<int>("rows").ShouldBe(7);
        parameters.Get<int>("rows").ShouldBeOfType<int>();
    }

    [Fact]
    public void Get_UndeclaredParameter_ThrowsNamingItAndTheDeclaredOnes()
    {
        var parameters = Etl.Bind(Some.TextParameters(("table", "t")));

        var message = Should.Throw<KeyNotFoundException>(() => parameters.Get<int>("row")).Message;

        message.ShouldContain("'row'");
        message.ShouldContain("rows");
    }

    [Fact]
    public void Bind_IntParameterGivenAValueBeyondInt32_IsRejectedBeforeTheRun()
    {
        // Declared with Parameter<int>, but stored as a 64-bit integer: 3000000000 binds, and the op's
        // Get<int> then throws OverflowException mid-run instead of a ParameterException up front.
        var parameters = Should.Throw<ParameterException>(() => Etl.Bind(Some.TextParameters(("table", "t"), ("rows", "3000000000"))));

        parameters.Message.ShouldContain("'rows'");
    }
}
