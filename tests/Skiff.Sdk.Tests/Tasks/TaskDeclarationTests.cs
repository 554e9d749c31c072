using System.Text.Json.Nodes;
using Skiff.Sdk.Protocol;

namespace Skiff.Sdk.Tests.Tasks;

/// <summary>Declaring tasks with <see cref="JobCatalog.Task{TInput, TOutput}"/>, and how the definitions describe them.</summary>
public sealed class TaskDeclarationTests
{
    public sealed record Scan(string ScanId, int[] Frames);

    public sealed record Mesh(string ScanId, int Vertices);

    [Fact]
    public void ATaskNameDeclaredTwice_IsRefused()
    {
        var catalog = new JobCatalog();
        catalog.Task("reconstruct", (TaskContext _, Scan scan) => Task.FromResult(new Mesh(scan.ScanId, 1)));

        var problem = Should.Throw<ArgumentException>(() => catalog.Task("reconstruct", (TaskContext _, int n) => Task.FromResult(n)));

        problem.Message.ShouldStartWith("A task named 'reconstruct' is already declared; task names are unique within a program.");
        catalog.BuildTasks().Count.ShouldBe(1);
    }

    [Theory]
    [InlineData("")]
    [InlineData("re construct")]
    [InlineData("a/b")]
    [InlineData("..")]
    public void ABadTaskName_IsRefused(string name)
    {
        var catalog = new JobCatalog();

        var problem = Should.Throw<ArgumentException>(() => catalog.Task(name, (TaskContext _, int n) => Task.FromResult(n)));

        problem.Message.ShouldBe($"'{name}' is not a valid task name: use 1 to 200 letters, digits, '_', '-' or '.', not only dots.");
        catalog.BuildTasks().ShouldBeEmpty();
    }

    [Fact]
    public void ABadRetryPolicy_IsRefused_NamingTheTask()
    {
        var catalog = new JobCatalog();

        var problem = Should.Throw<ArgumentException>(() =>
            catalog.Task("reconstruct", (TaskContext _, int n) => Task.FromResult(n), retry: new RetryPolicy(0, TimeSpan.Zero)));

        problem.Message.ShouldBe("task 'reconstruct': MaxAttempts must be at least 1, not 0.");
    }

    [Fact]
    public void ATaskMayShareItsNameWithAJob()
    {
        var catalog = new JobCatalog();
        catalog.Job("reconstruct").Run(_ => Task.CompletedTask);

        catalog.Task("reconstruct", (TaskContext _, int n) => Task.FromResult(n));

        catalog.BuildTasks().Single().Name.ShouldBe("reconstruct");
    }

    [Theory]
    [InlineData("Meshing")]
    [InlineData("mesh ing")]
    public void ALocalPoolWithABadName_IsRefused(string pool)
    {
        var catalog = new JobCatalog();

        Should.Throw<ArgumentException>(() => catalog.LocalPool(pool, _ => { })).Message.ShouldContain($"'{pool}' does not name a pool");
    }

    [Fact]
    public void ALocalPoolRegisteredTwice_IsRefused_AndItsTasksAreNotTheProgramsOwn()
    {
        var catalog = new JobCatalog();
        catalog.LocalPool("meshing", pool => pool.Task("reconstruct", (TaskContext _, int n) => Task.FromResult(n)));

        Should.Throw<ArgumentException>(() => catalog.LocalPool("meshing", _ => { })).Message.ShouldBe(
            "The local pool 'meshing' is already registered; register each pool once. (Parameter 'pool')");
        catalog.BuildTasks().ShouldBeEmpty();
    }

    [Fact]
    public void Definitions_DescribeEachTask_WithItsTypesSchemasAndRetryPolicy()
    {
        var catalog = new JobCatalog();
        catalog.Task(
            "reconstruct",
            (TaskContext _, Scan scan) => Task.FromResult(new Mesh(scan.ScanId, 1)),
            new RetryPolicy(3, TimeSpan.FromSeconds(2)) { MaxDelay = TimeSpan.FromSeconds(30) },
            "Builds a mesh from a scan");
        catalog.Task("count", (TaskContext _, List<Scan> scans) => Task.FromResult(scans.Count));

        var described = DefinitionsJson.Describe(catalog.BuildTasks())!;
        var json = JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(new DefinitionsReply([], described), ProtocolJson.Wire.CodeServerMessage))!;

        var tasks = json["tasks"]!.AsArray();
        tasks.Select(t => (string?)t!["name"]).ShouldBe(["reconstruct", "count"]);
        var reconstruct = tasks[0]!;
        ((string?)reconstruct["description"]).ShouldBe("Builds a mesh from a scan");
        ((string?)reconstruct["input_type"]).ShouldBe("Skiff.Sdk.Tests.Tasks.TaskDeclarationTests.Scan");
        ((string?)reconstruct["output_type"]).ShouldBe("Skiff.Sdk.Tests.Tasks.TaskDeclarationTests.Mesh");
        reconstruct["retry"]!.ToJsonString().ShouldBe("""{"max_attempts":3,"initial_delay_ms":2000,"backoff_multiplier":2,"max_delay_ms":30000}""");
        // The schema describes the JSON the task reads: snake_case, as the SDK writes it.
        var input = reconstruct["input_schema"]!;
        input["properties"]!.AsObject().Select(p => p.Key).ShouldBe(["scan_id", "frames"]);
        input["properties"]!["frames"]!["type"]!.ToJsonString().ShouldContain("array");
        reconstruct["output_schema"]!["properties"]!.AsObject().Select(p => p.Key).ShouldBe(["scan_id", "vertices"]);
        ((string?)tasks[1]!["input_type"]).ShouldBe("System.Collections.Generic.List<Skiff.Sdk.Tests.Tasks.TaskDeclarationTests.Scan>");
        ((string?)tasks[1]!["output_type"]).ShouldBe("System.Int32");
        tasks[1]!["retry"]!["max_attempts"]!.GetValue<int>().ShouldBe(1);
    }

    [Fact]
    public void Definitions_OfAProgramWithoutTasks_LeaveTheFieldOut()
    {
        var catalog = new JobCatalog();
        catalog.Job("hello").Run(_ => Task.CompletedTask);

        var reply = new DefinitionsReply(DefinitionsJson.Describe(catalog.Build()), DefinitionsJson.Describe(catalog.BuildTasks()));

        System.Text.Json.JsonSerializer.Serialize(reply, ProtocolJson.Wire.CodeServerMessage).ShouldNotContain("tasks");
    }
}
