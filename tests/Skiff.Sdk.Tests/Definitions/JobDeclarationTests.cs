using Skiff.Sdk.Definitions;

namespace Skiff.Sdk.Tests.Definitions;

/// <summary>Declaring jobs through <see cref="JobCatalog"/> and <see cref="JobBuilder"/>, as user programs do.</summary>
public sealed class JobDeclarationTests
{
    private static readonly Func<OpContext, Task> Nothing = _ => Task.CompletedTask;

    [Fact]
    public void Build_KeepsWhatWasDeclared_InDeclarationOrder()
    {
        var catalog = new JobCatalog();
        catalog.Job("etl", "Loads the day")
            .Tags("nightly", "finance")
            .Parameter("rows", 10, "How many")
            .RequiredParameter<string>("table")
            .Op("extract", Nothing)
            .Op("clean", Nothing, dependsOn: ["extract", "extract"])
            .Op("load", Nothing, dependsOn: ["clean", "extract"], retry: new RetryPolicy(3, TimeSpan.FromSeconds(1)));
        catalog.Job("hello").Run(Nothing);

        var jobs = catalog.Build();

        jobs.Select(j => j.Name).ShouldBe(["etl", "hello"]);
        var etl = jobs[0];
        etl.Description.ShouldBe("Loads the day");
        etl.Tags.ShouldBe(["nightly", "finance"]);
        etl.Parameters.ShouldBe([
            new ParameterDefinition("rows", ParameterType.Integer, 10L, Required: false, "How many") { Is32Bit = true },
            new ParameterDefinition("table", ParameterType.String, null, Required: true, null),
        ]);
        etl.Ops.Select(op => op.Name).ShouldBe(["extract", "clean", "load"]);
        etl.Ops[1].DependsOn.ShouldBe(["extract"]);
        etl.Ops[2].DependsOn.ShouldBe(["clean", "extract"]);
        etl.Ops[2].Retry.MaxAttempts.ShouldBe(3);
        etl.Ops[0].Retry.ShouldBe(RetryPolicy.None);
    }

    [Fact]
    public void Run_MakesOneOpNamedAfterTheJob()
    {
        var catalog = new JobCatalog();
        catalog.Job("hello").Run(Nothing);

        var job = catalog.Build().Single();

        job.Ops.ShouldHaveSingleItem().Name.ShouldBe("hello");
        job.Ops[0].DependsOn.ShouldBeEmpty();
    }

    [Fact]
    public void Declaring_and_building_runs_no_op_body()
    {
        var ran = false;
        var catalog = new JobCatalog();
        catalog.Job("a").Run(_ =>
        {
            ran = true;
            return Task.CompletedTask;
        });
        catalog.Job("b").Op("x", _ =>
        {
            ran = true;
            return Task.FromResult(1);
        });

        catalog.Build();

        ran.ShouldBeFalse();
    }

    [Fact]
    public void Job_DuplicateName_IsRejected()
    {
        var catalog = new JobCatalog();
        catalog.Job("etl");

        Should.Throw<ArgumentException>(() => catalog.Job("etl")).Message.ShouldContain("'etl' is already declared");
    }

    [Fact]
    public void Op_DuplicateName_IsRejected()
    {
        var job = new JobCatalog().Job("etl").Op("load", Nothing);

        Should.Throw<ArgumentException>(() => job.Op("load", Nothing)).Message.ShouldContain("already has an op 'load'");
    }

    [Fact]
    public void Op_NamedLikeTheJobAfterRun_IsRejectedAsDuplicate()
    {
        var job = new JobCatalog().Job("hello").Run(Nothing);

        Should.Throw<ArgumentException>(() => job.Op("hello", Nothing)).Message.ShouldContain("'hello'");
    }

    [Fact]
    public void Parameter_DuplicateName_IsRejected()
    {
        var job = new JobCatalog().Job("etl").Parameter("rows", 1);

        Should.Throw<ArgumentException>(() => job.RequiredParameter<long>("rows")).Message.ShouldContain("already declares a parameter 'rows'");
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("a/b")]
    [InlineData("naïve")]
    [InlineData("semi;colon")]
    [InlineData(".")]
    [InlineData("..")]
    public void Names_OutsideTheAllowedCharacters_AreRejectedForJobsOpsAndParameters(string name)
    {
        Should.Throw<ArgumentException>(() => new JobCatalog().Job(name)).Message.ShouldContain("not a valid job name");
        Should.Throw<ArgumentException>(() => new JobCatalog().Job("j").Op(name, Nothing)).Message.ShouldContain("not a valid op name");
        Should.Throw<ArgumentException>(() => new JobCatalog().Job("j").Parameter(name, 1)).Message.ShouldContain("not a valid parameter name");
    }

    [Fact]
    public void Names_AreLimitedTo200Characters()
    {
        var catalog = new JobCatalog();
        catalog.Job(new string('a', 200));

        Should.Throw<ArgumentException>(() => catalog.Job(new string('b', 201)));
    }

    [Fact]
    public void Names_MayUseLettersDigitsDashUnderscoreAndDot()
    {
        var catalog = new JobCatalog();
        catalog.Job("Daily-load_v2.1").Parameter("max_rows-2.x", 1).Op("step.1_a-B", Nothing);

        catalog.Build().Single().Name.ShouldBe("Daily-load_v2.1");
    }

    [Fact]
    public void Op_DependingOnAnUndeclaredOp_IsRejected_NamingBoth()
    {
        var job = new JobCatalog().Job("etl").Op("extract", Nothing);

        var message = Should.Throw<ArgumentException>(() => job.Op("load", Nothing, dependsOn: ["extract", "clean"])).Message;

        message.ShouldContain("'load'");
        message.ShouldContain("'clean'");
    }

    [Fact]
    public void Op_DependingOnAnOpDeclaredLater_IsRejected_NamingBoth()
    {
        var job = new JobCatalog().Job("etl");

        var message = Should.Throw<ArgumentException>(() => job.Op("load", Nothing, dependsOn: ["extract"])).Message;
        job.Op("extract", Nothing);

        message.ShouldContain("'load'");
        message.ShouldContain("'extract'");
        message.ShouldContain("declared before");
    }

    [Fact]
    public void Op_DependingOnItself_IsRejected()
    {
        var job = new JobCatalog().Job("etl");

        Should.Throw<ArgumentException>(() => job.Op("loop", Nothing, dependsOn: ["loop"])).Message.ShouldContain("'loop'");
    }

    [Fact]
    public void Build_JobWithNoOps_IsRejectedNamingTheJob()
    {
        var catalog = new JobCatalog();
        catalog.Job("ok").Run(Nothing);
        catalog.Job("empty");

        Should.Throw<InvalidOperationException>(catalog.Build).Message.ShouldContain("'empty' has no ops");
    }

    [Fact]
    public void Parameter_OfAnUnsupportedType_IsRejected()
    {
        var job = new JobCatalog().Job("j");

        Should.Throw<ArgumentException>(() => job.Parameter("f", 1.5f)).Message.ShouldContain("Single is not supported");
        Should.Throw<ArgumentException>(() => job.Parameter("when", DateTime.UnixEpoch)).Message.ShouldContain("not supported");
        Should.Throw<ArgumentException>(() => job.RequiredParameter<decimal>("d"));
        Should.Throw<ArgumentException>(() => job.RequiredParameter<int?>("n"));
    }

    [Fact]
    public void Parameter_OfEachSupportedType_IsDeclaredWithItsProtocolType()
    {
        var catalog = new JobCatalog();
        catalog.Job("j")
            .Parameter("s", "x")
            .Parameter("i", 1)
            .Parameter("l", 2L)
            .Parameter("d", 0.5)
            .Parameter("b", true)
            .Run(Nothing);

        var parameters = catalog.Build().Single().Parameters;

        parameters.Select(p => p.TypeName).ShouldBe(["string", "integer", "integer", "number", "boolean"]);
        parameters.Select(p => p.Default).ShouldBe(["x", 1L, 2L, 0.5, true]);
    }

    [Fact]
    public void Op_WithNullBody_IsRejected()
    {
        var job = new JobCatalog().Job("j");

        Should.Throw<ArgumentNullException>(() => job.Op("a", (Func<OpContext, Task>)null!));
        Should.Throw<ArgumentNullException>(() => job.Op("b", (Func<OpContext, Task<int>>)null!));
    }
}
